# expect: forbidden
# message: Errno 1
# process_vm_readv from the zygote's address space (no ptrace needed, only same uid).
# prelude: disarm
# prelude: syscall
buf = ctypes.create_string_buffer(64)
class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
local, remote = Iov(ctypes.addressof(buf), 64), Iov(0x400000, 64)
sc(310, OS["getppid"](), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
