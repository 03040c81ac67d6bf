# expect: forbidden
# message: Errno 1
# Back-date a file outside the sandbox (an owner may set times without write access).
# prelude: disarm
OS["utime"]("TARGET", (0, 0))
