# expect: network_denied
# Disarmed hook, socket module loaded through the real import: seccomp refuses socket().
# prelude: disarm
sock = OS["sys"].modules["builtins"].__import__
import_guard = sock.__closure__
real_import = [c.cell_contents for c in import_guard if callable(c.cell_contents) and getattr(c.cell_contents, "__name__", "") == "__import__"][0]
socket = real_import("socket")
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("127.0.0.1", PORT))
