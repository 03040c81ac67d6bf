# expect: forbidden
# prelude: disarm
OS["kill"](OS["getppid"](), 9)
