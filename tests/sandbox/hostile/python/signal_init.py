# expect: forbidden
# prelude: disarm
OS["kill"](1, 15)
