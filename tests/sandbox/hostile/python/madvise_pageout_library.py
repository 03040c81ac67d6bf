# expect: forbidden
# message: Errno 1
# madvise(MADV_PAGEOUT) on a mapped shared file reclaims its pages host-wide (allowed to
# the file's owner: a uid-0 child owns root's libraries); high bits in the advice do not
# slip past the rule.
# prelude: disarm
# prelude: syscall
fd = OS["open"]("/etc/ld.so.cache", OS["O_RDONLY"])
size = OS["fstat"](fd).st_size
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
addr = libc.mmap(None, size, 1, 1, fd, 0)
refused = []
for advice in ((1 << 32) | 21, 20):  # MADV_PAGEOUT with high garbage, MADV_COLD
    try:
        sc(28, ctypes.c_void_p(addr), ctypes.c_size_t(size), ctypes.c_long(advice))
    except OSError as exc:
        refused.append(exc)
if len(refused) == 2:
    raise refused[0]
outputs["refused"] = len(refused)
