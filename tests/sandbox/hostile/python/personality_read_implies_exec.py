# expect: forbidden
# message: Errno 1
# personality(READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE): executable heap, no ASLR.
# prelude: disarm
# prelude: syscall
sc(135, 0x0400000 | 0x0040000)
