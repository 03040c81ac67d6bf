# expect: forbidden
# message: Errno 1
# add_key into the session keyring: kernel keyrings are shared beyond the process.
# prelude: disarm
# prelude: syscall
sc(248, b"user", b"bcai-hostile", b"secret", 6, -3)
