# expect: forbidden
# message: Errno 1
# userfaultfd: the tool of choice to stretch kernel race windows.
# prelude: disarm
# prelude: syscall
sc(323, 0)
