# expect: crashed
# Raise the recursion limit and blow the C stack (each level passes through C code, map):
# the process dies of SIGSEGV, contained.
try:
    1/0
except ZeroDivisionError as e:
    _f = e.__traceback__.tb_frame
    while _f is not None and "guard" not in _f.f_locals:
        _f = _f.f_back
    _f.f_locals["guard"].armed = False
    del _f
OS = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__
OS["sys"].setrecursionlimit(10 ** 9)
def f(x):
    return max(map(f, [x + 1]))
f(0)
