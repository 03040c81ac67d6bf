# expect: forbidden
# message: Errno 1
# Read the kernel ring buffer (host addresses, other containers' messages).
# prelude: disarm
# prelude: syscall
buf = ctypes.create_string_buffer(4096)
outputs['n'] = sc(103, 3, buf, 4096)
