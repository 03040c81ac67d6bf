# expect: forbidden
# message: Errno 1
# SIGKILL the zygote through a pidfd (kill() to others is refused; this is another door).
# prelude: disarm
# prelude: syscall
pidfd = sc(434, OS['getppid'](), 0)
sc(424, pidfd, 9, 0, 0)
