# expect: network_denied
# message: Errno 13
# constraints: network_access=1
# netlink (routing tables, audit, uevents): not part of the granted network.
# prelude: disarm
# prelude: syscall
socket = _imp("socket")
socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
