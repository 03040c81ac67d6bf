# expect: forbidden
# message: Errno 1
# keyctl(KEYCTL_GET_KEYRING_ID, session): probing the keyrings of the uid.
# prelude: disarm
# prelude: syscall
sc(250, 0, -3, 0)
