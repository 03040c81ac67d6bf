# expect: forbidden
# message: Errno 1
# A higher scheduling priority needs CAP_SYS_NICE, which the child does not hold.
# prelude: disarm
OS["nice"](-10)
