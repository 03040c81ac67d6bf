# expect: forbidden
# Whatever uid the child has, it holds no capability: chown to another user fails.
# prelude: disarm
open("mine.txt", "w").close()
OS["chown"]("mine.txt", 1234, 1234)
