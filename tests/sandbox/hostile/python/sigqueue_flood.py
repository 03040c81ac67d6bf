# expect: crashed
# message: Errno 11
# Queue real-time signals to itself with the signal blocked: each pending signal counts
# against the uid's RLIMIT_SIGPENDING total, which a root child shares with the node.
# The child's own limit is 64: the 65th is EAGAIN.
# prelude: disarm
# prelude: syscall
signal = OS["sys"].modules["signal"]
signal.pthread_sigmask(signal.SIG_BLOCK, [34])
info = ctypes.create_string_buffer(128)
ctypes.memmove(info, (34).to_bytes(4, "little") + bytes(4) + (-1 & 0xFFFFFFFF).to_bytes(4, "little"), 12)
pid = OS["getpid"]()
for _ in range(1000):
    sc(129, pid, 34, info)
