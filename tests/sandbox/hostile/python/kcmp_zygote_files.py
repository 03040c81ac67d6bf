# expect: forbidden
# message: Errno 1
# kcmp compares kernel objects of two processes (which fds the zygote shares with us):
# an information leak across the process boundary.
# prelude: disarm
# prelude: syscall
outputs['same'] = sc(312, OS['getpid'](), OS['getppid'](), 0, 4, 4)
