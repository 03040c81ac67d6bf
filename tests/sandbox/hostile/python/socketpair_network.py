# expect: network_denied
# message: Errno 13
# constraints: network_access=1
# socketpair is never needed for the granted network (TCP/UDP over IP).
# prelude: disarm
# prelude: syscall
socket = _imp("socket")
socket.socketpair()
