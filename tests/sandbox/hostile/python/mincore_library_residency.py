# expect: forbidden
# message: Errno 1
# mincore on a mapped shared file reports which of its pages are in the page cache
# (to its owner; a uid-0 child owns every root-owned library): what other processes on
# the host are using, the side channel cachestat is refused for.
# prelude: disarm
# prelude: syscall
fd = OS["open"]("/etc/ld.so.cache", OS["O_RDONLY"])
size = OS["fstat"](fd).st_size
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
vec = ctypes.create_string_buffer((size + 4095) // 4096)
sc(27, ctypes.c_void_p(addr), ctypes.c_size_t(size), vec)
outputs["resident"] = list(vec.raw)
