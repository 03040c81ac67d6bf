# expect: forbidden
# message: Errno 13
# constraints: max_file_operations=10
# A symlink in the work dir aimed at a file outside: opening through it is still judged
# by where it lands (Landlock), so nothing outside is written.
# prelude: disarm
OS["symlink"]("TARGET", "result.npy")
open("result.npy", "w").write("pwned")
