# expect: forbidden
# message: Errno 1
# setns into another namespace by an fd number (any fd: seccomp refuses before the
# kernel looks at it).
# prelude: disarm
# prelude: syscall
sc(308, 0, 0)
