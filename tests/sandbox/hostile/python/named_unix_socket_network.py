# expect: network_denied
# message: Errno 13
# constraints: network_access=1
# A named Unix socket outside the work dir (the Docker/systemd style of escape).
# prelude: disarm
# prelude: syscall
socket = _imp("socket")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/docker.sock")
