# expect: forbidden
# message: Errno 1
# quotactl on the root file system: query or change the host's disk quotas.
# prelude: disarm
# prelude: syscall
buf = ctypes.create_string_buffer(128)
outputs['n'] = sc(179, 0x800007, b'/', 0, buf)  # Q_GETFMT
