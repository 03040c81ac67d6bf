# expect: forbidden
# message: Errno 1
# constraints: max_file_operations=10
# chmod 000 a directory in the work dir so an unprivileged parent cannot clean it up.
# prelude: disarm
OS["mkdir"]("locked")
open("locked/f", "w").close()
OS["chmod"]("locked", 0)
