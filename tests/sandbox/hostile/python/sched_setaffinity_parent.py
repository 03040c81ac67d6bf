# expect: forbidden
# message: Errno 1
# Pin the zygote to one CPU.
# prelude: disarm
# prelude: syscall
mask = ctypes.c_uint64(1)
sc(203, OS["getppid"](), 8, ctypes.byref(mask))
