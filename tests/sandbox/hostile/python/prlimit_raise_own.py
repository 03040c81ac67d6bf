# expect: forbidden
# message: Errno 1
# Raise the own RLIMIT_AS hard limit by raw prlimit64 (no resource module, no audit
# event): without CAP_SYS_RESOURCE the kernel refuses.
# prelude: disarm
# prelude: syscall
new = (ctypes.c_uint64 * 2)(2**64 - 1, 2**64 - 1)
sc(302, 0, 9, new, None)
