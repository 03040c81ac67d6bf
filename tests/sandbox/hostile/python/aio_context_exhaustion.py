# expect: forbidden
# message: Errno 1
# io_setup(65536): the whole host's AIO budget (fs.aio-max-nr) held by one job, so a
# database on the node could not start its I/O.
# prelude: disarm
# prelude: syscall
ctx = ctypes.c_ulong(0)
sc(206, 65536, ctypes.byref(ctx))
