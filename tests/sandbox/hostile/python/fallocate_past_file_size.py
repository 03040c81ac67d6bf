# expect: file_ops_limit
# message: Errno 27
# constraints: max_file_operations=4
# fallocate reserves real blocks without writing them (no page cache, no write loop):
# 1 GiB in one call. RLIMIT_FSIZE (max_file_size_mb) bounds it like a write: EFBIG.
# prelude: disarm
fd = OS["open"]("blocks", OS["O_RDWR"] | OS["O_CREAT"], 0o600)
OS["posix_fallocate"](fd, 0, 1 << 30)
