# expect: file_ops_limit
# constraints: max_file_operations=20, max_execution_time_ms=8000
# The same flood with 20 file operations granted and the counting hook disarmed: the
# parent watches the work dir and kills the job once it holds more than 20 entries.
# prelude: disarm
n = 0
while True:
    open(f"f{n}", "w").close()
    n += 1
