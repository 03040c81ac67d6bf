# expect: forbidden
# message: Errno 13
# The zygote's (and through it the node's) environment, mounts and command line under
# /proc: Landlock grants no /proc at all.
# prelude: disarm
for path in (f"/proc/{OS['getppid']()}/environ", "/proc/self/mountinfo", "/proc/1/cmdline"):
    try:
        with open(path, "rb") as f:
            outputs[path.split("/")[-1]] = list(f.read(64))
    except PermissionError as exc:
        last = exc
raise last
