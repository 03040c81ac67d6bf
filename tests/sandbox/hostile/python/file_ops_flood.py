# expect: file_ops_limit
# constraints: max_file_operations=3
for i in range(100):
    open(f"f{i}.txt", "w").write("x")
