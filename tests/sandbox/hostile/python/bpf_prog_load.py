# expect: forbidden
# message: Errno 1
# bpf(BPF_MAP_CREATE): unprivileged eBPF is a kernel attack surface.
# prelude: disarm
# prelude: syscall
attr = ctypes.create_string_buffer(bytes([2, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0]) + b"\0" * 112)
sc(321, 0, attr, 128)
