# expect: forbidden
# message: Errno 1
# kill(0, SIGKILL): the whole process group (the zygote's).
# prelude: disarm
OS["kill"](0, 9)
