# expect: forbidden
# message: Errno 1
# Install a seccomp filter of its own that turns a refused call's EPERM into success
# (RET_ERRNO 0): the sandbox's EPERMs would then read as results.
# prelude: disarm
# prelude: syscall
prog = (ctypes.c_uint64 * 1)(0x7fff000000000006)  # BPF_RET|BPF_K, SECCOMP_RET_ALLOW
fprog = (ctypes.c_uint64 * 2)(1, ctypes.addressof(prog))
sc(317, 1, 0, fprog)  # SECCOMP_SET_MODE_FILTER
