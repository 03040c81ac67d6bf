# expect: forbidden
# message: Errno 1
# prlimit64 on the zygote: a root child without capabilities still has the zygote's
# uid, which is all prlimit checks; RLIMIT_NOFILE=0 there would starve every later job
# (and the node is the zygote's parent).
# prelude: disarm
# prelude: syscall
new = (ctypes.c_uint64 * 2)(0, 0)
sc(302, OS["getppid"](), 7, new, None)
