# expect: forbidden
# message: Errno 1
# io_uring: its submitted operations run in kernel workers that seccomp never sees.
# prelude: disarm
# prelude: syscall
params = ctypes.create_string_buffer(120)
sc(425, 8, params)
