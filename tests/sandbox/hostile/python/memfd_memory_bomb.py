# expect: forbidden
# message: Errno 1
# memfd pages are tmpfs memory that RLIMIT_AS does not count: 40 fds x 16 MiB each.
# prelude: disarm
# prelude: syscall
for i in range(40):
    fd = sc(319, b"x", 0)
    OS["write"](fd, b"x" * (16 << 20))
