# expect: time_limit
# Ignore SIGXCPU and spin: the wall-clock kill (and RLIMIT_CPU's hard limit) still end it.
# prelude: disarm
OS["sys"].modules["signal"].signal(24, 1)
while True:
    pass
