# expect: forbidden
# message: Errno 1
# perf_event_open on this process (software clock): timing side channels, kernel bugs.
# prelude: disarm
# prelude: syscall
attr = ctypes.create_string_buffer(128)
ctypes.memmove(attr, bytes([1, 0, 0, 0, 128, 0, 0, 0]), 8)  # PERF_TYPE_SOFTWARE, size 128
sc(298, attr, 0, -1, -1, 0)
