# expect: forbidden
# message: Errno 1
# sync() in a loop: every file system on the host flushes, and the caller sits in
# uninterruptible sleep where even SIGKILL waits. seccomp refuses sync and syncfs (by
# raw syscall: libc's sync() and os.sync() drop the error).
# prelude: disarm
# prelude: syscall
while True:
    sc(162)
