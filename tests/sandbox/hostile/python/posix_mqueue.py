# expect: forbidden
# message: Errno 1
# mq_open: a POSIX message queue lives in the mqueue fs, which no path rule sees.
# prelude: disarm
# prelude: syscall
sc(240, b"bcai-hostile", 0o100 | 2, 0o666, None)
