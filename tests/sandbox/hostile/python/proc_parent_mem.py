# expect: forbidden
# message: Errno 13
# Read the zygote's memory through /proc/<ppid>/mem (same uid in capabilities mode).
# prelude: disarm
with open(f"/proc/{OS['getppid']()}/mem", "rb") as mem:
    outputs["x"] = list(mem.read(16))
