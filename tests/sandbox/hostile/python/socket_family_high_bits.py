# expect: forbidden
# message: Errno 13
# constraints: network_access=1
# AF_UNIX with garbage in the upper 32 bits (the kernel truncates the int): the filter
# compares all 64 bits and refuses anything that is not exactly AF_INET/AF_INET6
# (kind forbidden: the raw syscall is not made from socket.py, EACCES all the same).
# prelude: disarm
# prelude: syscall
libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_long, ctypes.c_long]
sc(41, (1 << 32) | 1, 1, 0)
