# expect: forbidden
# message: Errno 1
# ioprio_set(IOPRIO_WHO_PROCESS, zygote, idle class): starve its disk I/O.
# prelude: disarm
# prelude: syscall
sc(251, 1, OS["getppid"](), 3 << 13)
