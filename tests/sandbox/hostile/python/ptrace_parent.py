# expect: forbidden
# message: Errno 1
# PTRACE_ATTACH to the zygote: seccomp refuses ptrace whatever the target.
# prelude: disarm
# prelude: syscall
sc(101, 16, OS["getppid"](), 0, 0)
