# expect: network_denied
# message: Errno 13
# constraints: network_access=1
# Even with network granted, AF_UNIX is refused (abstract or named: Landlock does not
# guard connect() to a named socket such as a daemon's control socket).
# prelude: disarm
# prelude: syscall
socket = _imp("socket")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0bcai-hostile")
