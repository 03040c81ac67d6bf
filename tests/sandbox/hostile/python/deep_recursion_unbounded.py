# expect: crashed
# Raise the recursion limit and blow the C stack (each level passes through C code, map):
# the process dies of SIGSEGV, contained.
# prelude: disarm
OS["sys"].setrecursionlimit(10 ** 9)
def f(x):
    return max(map(f, [x + 1]))
f(0)
