# expect: forbidden
# message: Errno 1
# memfd_secret: memory removed from the kernel's direct map, outside RLIMIT_AS once
# ftruncated and mapped; the memfd rule must cover this sibling too.
# prelude: disarm
# prelude: syscall
outputs['fd'] = sc(447, 0)
