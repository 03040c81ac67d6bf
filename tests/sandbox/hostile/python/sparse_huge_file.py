# expect: file_ops_limit
# message: Errno 27
# constraints: max_file_operations=2
# A sparse 1 TiB file (one byte at the end): RLIMIT_FSIZE counts the offset, not blocks.
# prelude: disarm
fd = OS["open"]("sparse", OS["O_WRONLY"] | OS["O_CREAT"])
OS["pwrite"](fd, b"x", 1 << 40)
