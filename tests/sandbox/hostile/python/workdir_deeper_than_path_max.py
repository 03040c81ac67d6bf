# expect: file_ops_limit
# constraints: max_file_operations=40, max_execution_time_ms=8000
# Nest directories with 255-byte names until their path passes PATH_MAX (4096), then
# flood files below: a path-based count cannot list them. A work dir the parent cannot
# inspect counts as over the budget.
# prelude: disarm
name = "d" * 255
for _ in range(20):
    OS["mkdir"](name)
    OS["chdir"](name)
n = 0
while True:
    open(f"f{n}", "w").close()
    n += 1
