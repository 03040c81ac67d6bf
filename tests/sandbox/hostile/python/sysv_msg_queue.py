# expect: forbidden
# message: Errno 1
# A System V message queue: another object that outlives the process.
# prelude: disarm
# prelude: syscall
sc(68, 0x6263, 0o1000 | 0o666)
