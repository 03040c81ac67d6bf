# expect: forbidden
# message: Errno 1
# unshare(CLONE_NEWUSER | CLONE_NEWNS): a user namespace gives back every capability
# inside it (and a mount namespace to mount over the work dir's view).
# prelude: disarm
# prelude: syscall
sc(272, 0x10000000 | 0x00020000)
