# expect: forbidden
# message: Errno 1
# A System V shared memory segment outlives the process: host memory no limit counts,
# and a mailbox for the next job. (The test also checks /proc/sysvipc stays unchanged.)
# prelude: disarm
# prelude: syscall
sc(29, 0, 1 << 30, 0o1000 | 0o666)
