# expect: network_denied
# Disarmed hook, socket module loaded through the real import: seccomp refuses socket().
try:
    1/0
except ZeroDivisionError as e:
    _f = e.__traceback__.tb_frame
    while _f is not None and "guard" not in _f.f_locals:
        _f = _f.f_back
    _f.f_locals["guard"].armed = False
    del _f
OS = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__
sock = OS["sys"].modules["builtins"].__import__
import_guard = sock.__closure__
real_import = [c.cell_contents for c in import_guard if callable(c.cell_contents) and getattr(c.cell_contents, "__name__", "") == "__import__"][0]
socket = real_import("socket")
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("127.0.0.1", PORT))
