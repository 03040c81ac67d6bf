# expect: forbidden
# message: Errno 1
# prelude: disarm
# prelude: syscall
sc(64, 0x6263, 8, 0o1000 | 0o666)
