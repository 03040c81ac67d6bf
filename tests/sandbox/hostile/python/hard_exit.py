# expect: crashed
# prelude: disarm
OS["_exit"](0)
