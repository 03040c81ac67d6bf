# expect: forbidden
# message: Errno 1
# splice a read-only library's page-cache pages into a pipe (the first step of Dirty
# Pipe, CVE-2022-0847, which then overwrote them): refused, whatever the kernel's bugs.
# prelude: disarm
lib = [m.__file__ for m in list(OS["sys"].modules.values()) if str(getattr(m, "__file__", "")).endswith(".so")][0]
src = OS["open"](lib, OS["O_RDONLY"])
r, w = OS["pipe"]()
OS["splice"](src, w, 4096)
