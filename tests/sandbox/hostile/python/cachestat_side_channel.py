# expect: forbidden
# message: Errno 1
# cachestat on numpy's shared library: which of its pages are in the page cache tells
# what other processes on the host just ran (a classic cache side channel).
# prelude: disarm
# prelude: syscall
lib = [m.__file__ for m in list(OS["sys"].modules.values()) if str(getattr(m, "__file__", "")).endswith(".so")][0]
fd = OS["open"](lib, OS["O_RDONLY"])
rng = (ctypes.c_uint64 * 2)(0, 0)
out = (ctypes.c_uint64 * 5)()
sc(451, fd, rng, out, 0)
