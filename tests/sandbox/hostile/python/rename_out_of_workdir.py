# expect: forbidden
# message: Errno 13
# constraints: max_file_operations=10
# Move a file out of the work dir so it survives the clean-up.
# prelude: disarm
open("payload", "w").write("x")
OS["rename"]("payload", "/tmp/bcai-hostile-canary")
