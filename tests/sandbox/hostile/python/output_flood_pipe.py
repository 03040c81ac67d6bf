# expect: output_too_large
# constraints: max_output_bytes=1048576
# prelude: disarm
chunk = b"x" * (1 << 20)
while True:
    OS["write"](4, chunk)
