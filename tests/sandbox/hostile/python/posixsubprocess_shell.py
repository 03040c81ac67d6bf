# expect: forbidden
# message: Errno 1
# subprocess through the real import (_posixsubprocess.fork_exec, C code, no audit hook).
# prelude: disarm
# prelude: syscall
_imp("subprocess").run(["/bin/sh", "-c", "touch /tmp/bcai-hostile-canary"])
