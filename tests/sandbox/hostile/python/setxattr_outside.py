# expect: forbidden
# message: Errno 1
# Tag a file outside the sandbox with an extended attribute.
# prelude: disarm
OS["setxattr"]("TARGET", "user.bcai", b"pwned")
