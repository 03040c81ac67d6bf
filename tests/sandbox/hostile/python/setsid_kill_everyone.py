# expect: forbidden
# message: Errno 1
# A new session, then kill(-1, SIGKILL): every process the uid may signal.
# prelude: disarm
OS["setsid"]()
OS["kill"](-1, 9)
