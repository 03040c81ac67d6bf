# expect: forbidden
# prelude: disarm
open("/tmp/bcai-hostile-canary", "w").write("pwned")
