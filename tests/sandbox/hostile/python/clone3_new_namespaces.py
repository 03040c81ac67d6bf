# expect: crashed
# message: Errno 38
# clone3 with CLONE_NEWUSER|CLONE_NEWPID: seccomp cannot read clone3's flags (they sit in
# a struct), so clone3 is ENOSYS altogether (glibc falls back to clone, which is EPERM).
# prelude: disarm
# prelude: syscall
args = ctypes.create_string_buffer(88)
ctypes.memmove(args, (0x10000000 | 0x20000000).to_bytes(8, "little"), 8)
sc(435, args, 88)
