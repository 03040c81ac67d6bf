# expect: file_ops_limit
# message: Errno 27
# constraints: max_file_operations=2
# prelude: disarm
fd = OS["open"]("sparse", OS["O_WRONLY"] | OS["O_CREAT"])
OS["ftruncate"](fd, 1 << 40)
