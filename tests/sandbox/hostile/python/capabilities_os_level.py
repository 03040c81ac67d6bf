# expect: forbidden
# Whatever uid the child has, it holds no capability: chown to another user fails.
try:
    1/0
except ZeroDivisionError as e:
    _f = e.__traceback__.tb_frame
    while _f is not None and "guard" not in _f.f_locals:
        _f = _f.f_back
    _f.f_locals["guard"].armed = False
    del _f
OS = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__
open("mine.txt", "w").close()
OS["chown"]("mine.txt", 1234, 1234)
