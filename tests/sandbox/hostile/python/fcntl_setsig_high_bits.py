# expect: forbidden
# message: Errno 1
# F_SETSIG with garbage in the upper 32 bits of the command (the kernel reads an unsigned
# int): the filter compares the low 32 bits only.
# prelude: disarm
# prelude: syscall
libc.syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.c_long]
sc(72, 4, (1 << 32) | 10, 9)
