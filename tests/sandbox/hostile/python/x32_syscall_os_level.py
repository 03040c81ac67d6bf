# expect: crashed
# fork through the x32 syscall ABI (number | 0x40000000), the classic way around an
# x86_64-only filter: libseccomp's bad-arch action kills the process (SIGSYS).
# prelude: disarm
libc = OS["sys"].modules["ctypes"].CDLL(None)
libc.syscall(0x40000000 + 57)
