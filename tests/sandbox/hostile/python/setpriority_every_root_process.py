# expect: forbidden
# message: Errno 1
# setpriority(PRIO_USER, 0, 19): renice every process of the own uid (root: the node).
# prelude: disarm
# prelude: syscall
sc(141, 2, 0, 19)
