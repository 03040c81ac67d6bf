# expect: forbidden
# message: Errno 1
# pivot_root into the work dir (a new root where Landlock's rules would name other files).
# prelude: disarm
# prelude: syscall
sc(155, b'.', b'.')
