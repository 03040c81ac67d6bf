# expect: forbidden
# message: Errno 1
# Make the zygote the owner of the result pipe, with F_SETSIG = SIGKILL and O_ASYNC: the
# kernel itself would signal it when the pipe drains (a root child shares its uid).
# seccomp refuses F_SETOWN (Landlock ABI >= 6 would also drop the signal).
# prelude: disarm
fcntl = OS["sys"].modules["fcntl"]
fcntl.fcntl(4, fcntl.F_SETOWN, OS["getppid"]())
fcntl.fcntl(4, 10, 9)
fcntl.fcntl(4, fcntl.F_SETFL, fcntl.fcntl(4, fcntl.F_GETFL) | OS["O_ASYNC"])
