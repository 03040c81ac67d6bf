# expect: forbidden
# message: Errno 1
# modify_ldt: a 16-bit segment in the LDT (a long line of kernel bugs, no use in Python).
# prelude: disarm
# prelude: syscall
desc = ctypes.create_string_buffer(16)
sc(154, 1, desc, 16)
