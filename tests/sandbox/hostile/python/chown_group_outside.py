# expect: forbidden
# message: Errno 1
# The owner may change a file's group to one of its own groups (uid 0 owns TARGET).
# prelude: disarm
OS["chown"]("TARGET", -1, 0)
