# expect: forbidden
# prelude: disarm
OS["setuid"](0)
