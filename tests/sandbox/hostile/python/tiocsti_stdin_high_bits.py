# expect: forbidden
# message: Errno 1
# TIOCSTI (type into the node's terminal) on fd 0, with high garbage in the request:
# the kernel reads 32 bits, and so does the rule.
# prelude: disarm
# prelude: syscall
sc(16, 0, ctypes.c_ulong((0xdead << 32) | 0x5412), ctypes.byref(ctypes.c_char(b'x')))
