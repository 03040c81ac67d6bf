# expect: forbidden
# message: Errno 1
# Watch /tmp for other jobs' file activity (inotify needs no Landlock right).
# prelude: disarm
# prelude: syscall
fd = sc(294, 0)
sc(254, fd, b"/tmp", 0xFFF)
