# expect: crashed
# message: Errno 38
# setxattrat (kernel 6.13, x86_64 463), the newer twin of the denied setxattr: libseccomp
# releases that predate it cannot deny it by name, so every syscall number libseccomp
# cannot name is ENOSYS. Aimed at TARGET, a root-owned file the child's uid 0 owns.
# prelude: disarm
# prelude: syscall
value = ctypes.create_string_buffer(b"pwned")
args = ctypes.create_string_buffer(ctypes.addressof(value).to_bytes(8, "little") + (5).to_bytes(4, "little") + bytes(4))
sc(463, -100, b"TARGET", 0, b"user.bcai", args, 16)
