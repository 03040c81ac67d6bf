# expect: memory_limit
x = bytearray(8 * 1024 ** 3)
