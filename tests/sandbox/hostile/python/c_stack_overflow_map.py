# expect: crashed
# message: SIGSEGV
# setrecursionlimit(10**9), then recurse through a C builtin until the C stack ends: the
# child dies of SIGSEGV, the parent reports it.
# prelude: disarm
OS["sys"].setrecursionlimit(10 ** 9)
def deep(n):
    return list(map(deep, [n + 1]))
deep(0)
