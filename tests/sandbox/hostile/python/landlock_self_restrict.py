# expect: forbidden
# message: Errno 1
# Stack a Landlock domain of its own (a program that confines itself further could
# hide files from the bridge's clean-up, or probe which rules the sandbox holds).
# prelude: disarm
# prelude: syscall
attr = (ctypes.c_uint64 * 3)(1, 0, 0)  # handled_access_fs: EXECUTE
fd = sc(444, attr, 24, 0)
sc(446, fd, 0)
