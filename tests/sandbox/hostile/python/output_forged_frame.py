# expect: output_invalid
# Write a forged, malformed result frame straight into the result pipe and leave.
# prelude: disarm
OS["write"](4, b"BCSB\x00\x00\x00\x05garbage-and-more")
OS["_exit"](0)
