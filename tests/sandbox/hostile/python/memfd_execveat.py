# expect: forbidden
# message: Errno 1
# Fileless exec: copy the Python binary into a memfd, then execveat(fd, "", AT_EMPTY_PATH).
# memfd_create is already refused; execveat would be too.
# prelude: disarm
# prelude: syscall
fd = sc(319, b"x", 0)
OS["write"](fd, open(OS["sys"].executable, "rb").read())
argv = (ctypes.c_char_p * 4)(b"python", b"-c", b"open('/tmp/bcai-hostile-canary', 'w')", None)
sc(322, fd, b"", argv, (ctypes.c_char_p * 1)(None), 0x1000)
