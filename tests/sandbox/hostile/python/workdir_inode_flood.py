# expect: forbidden
# message: Errno 13
# Exhaust the disk's inodes with empty files. With max_file_operations=0 (the default)
# the work dir is read-only to the kernel (Landlock), so the first create fails.
# prelude: disarm
n = 0
while True:
    open(f"f{n}", "w").close()
    n += 1
