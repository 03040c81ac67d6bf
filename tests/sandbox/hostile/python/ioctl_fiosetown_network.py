# expect: forbidden
# message: Errno 1
# constraints: network_access=1
# The socket flavour of F_SETOWN: ioctl(FIOSETOWN) names the zygote as the owner of a
# TCP socket (SIGURG/SIGIO from the kernel).
# prelude: disarm
# prelude: syscall
socket = _imp("socket")
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
pid = ctypes.c_int(OS["getppid"]())
sc(16, s.fileno(), 0x8901, ctypes.byref(pid))
