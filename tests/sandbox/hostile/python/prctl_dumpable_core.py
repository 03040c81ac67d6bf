# expect: forbidden
# message: Errno 1
# Make itself dumpable again / change its name and parent-death signal: prctl is refused
# whole (PR_SET_DUMPABLE would let a crash write a core through core_pattern).
# prelude: disarm
# prelude: syscall
sc(157, 4, 1, 0, 0, 0)  # PR_SET_DUMPABLE 1
