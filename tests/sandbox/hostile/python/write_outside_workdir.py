# expect: forbidden
open("/tmp/bcai-hostile-canary", "w").write("pwned")
