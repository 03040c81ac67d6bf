# expect: memory_limit
s = "a" * (4 * 1024 ** 3)
