# expect: forbidden
# The audit hook is disarmed first: seccomp alone refuses fork.
# prelude: disarm
while True:
    OS["fork"]()
