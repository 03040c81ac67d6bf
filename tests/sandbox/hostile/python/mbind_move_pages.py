# expect: forbidden
# message: Errno 1
# Memory-policy calls that move pages between NUMA nodes (mbind with MPOL_MF_MOVE;
# migrate_pages of the zygote): host-wide memory traffic and another process's pages.
# prelude: disarm
# prelude: syscall
try:
    sc(256, OS['getppid'](), 64, ctypes.byref(ctypes.c_ulong(1)), ctypes.byref(ctypes.c_ulong(1)))
finally:
    sc(237, 0, 4096, 1, ctypes.byref(ctypes.c_ulong(1)), 64, 2)
