# expect: forbidden
# message: Errno 1
# mount a tmpfs over /tmp (root uid without caps; seccomp refuses before the cap check).
# prelude: disarm
# prelude: syscall
sc(165, b"none", b"/tmp", b"tmpfs", 0, None)
