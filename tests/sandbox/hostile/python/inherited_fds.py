# expect: ok
# Which file descriptors does the child hold? Only 0-2 (/dev/null) and its result pipe
# (4): no socket of the parent, no zygote control socket, no other job's pipes, no file
# of the node (a chain db). `n` counts the others, `secret` lists them.
# prelude: disarm
others = []
for fd in range(1024):
    try:
        OS["fstat"](fd)
    except OSError:
        continue
    if fd not in (0, 1, 2, 4):
        others.append(fd)
null = OS["stat"]("/dev/null").st_rdev
assert all(OS["fstat"](fd).st_rdev == null for fd in (0, 1, 2))
outputs["n"] = len(others)
outputs["secret"] = others
