# expect: forbidden
# message: Errno 13
# Write into the own process's memory through /proc/self/mem (the classic way to patch
# code past any in-process check): Landlock gives no access to /proc at all.
# prelude: disarm
with open("/proc/self/mem", "r+b") as mem:
    mem.seek(id(OS))
    mem.write(b"\0" * 8)
