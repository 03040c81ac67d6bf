# expect: forbidden
# message: Errno 1
# execve of /bin/sh by raw syscall number (no os.exec*, no audit event).
# prelude: disarm
# prelude: syscall
argv = (ctypes.c_char_p * 4)(b"sh", b"-c", b"touch /tmp/bcai-hostile-canary", None)
sc(59, b"/bin/sh", argv, (ctypes.c_char_p * 1)(None))
