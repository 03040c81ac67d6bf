# expect: forbidden
# message: Errno 1
# os.posix_spawn (vfork/clone + exec inside libc): seccomp refuses the clone.
# prelude: disarm
OS["posix_spawn"]("/bin/sh", ["sh", "-c", "touch /tmp/bcai-hostile-canary"], {})
