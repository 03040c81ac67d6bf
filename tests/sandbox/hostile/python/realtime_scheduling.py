# expect: forbidden
# message: Errno 1
# SCHED_FIFO priority 99 for itself, then spin: a real-time busy loop starves the host.
# No CAP_SYS_NICE and RLIMIT_RTPRIO 0.
# prelude: disarm
OS["sched_setscheduler"](0, OS["SCHED_FIFO"], OS["sched_param"](99))
while True:
    pass
