# expect: forbidden
# prelude: disarm
OS["sys"].modules["_thread"].start_new_thread(lambda: None, ())
