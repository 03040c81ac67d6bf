# expect: forbidden
open("../bcai-hostile-canary", "w").write("pwned")
