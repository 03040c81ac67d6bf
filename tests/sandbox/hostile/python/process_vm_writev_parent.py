# expect: forbidden
# message: Errno 1
# process_vm_writev into the zygote: would let a job rewrite the fork server.
# prelude: disarm
# prelude: syscall
buf = ctypes.create_string_buffer(b"\xcc" * 64)
class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
local, remote = Iov(ctypes.addressof(buf), 64), Iov(0x400000, 64)
sc(311, OS["getppid"](), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
