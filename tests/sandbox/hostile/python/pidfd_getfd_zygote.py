# expect: forbidden
# message: Errno 1
# Grab the zygote's file descriptors (its control socket to the bridge) through
# pidfd_open + pidfd_getfd, as a same-uid process could without ptrace.
# prelude: disarm
# prelude: syscall
pidfd = sc(434, OS['getppid'](), 0)
outputs['fd'] = sc(438, pidfd, 3, 0)
