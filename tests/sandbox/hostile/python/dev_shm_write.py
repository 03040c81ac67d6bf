# expect: forbidden
# message: Errno 13
# /dev/shm is world-writable tmpfs shared by every process: Landlock gives no access.
# prelude: disarm
open("/dev/shm/bcai-hostile", "w").write("x")
