# expect: file_ops_limit
# constraints: max_file_operations=5
with open("big.bin", "wb") as f:
    for _ in range(64):
        f.write(b"x" * (1 << 20))
