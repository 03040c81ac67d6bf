# expect: output_invalid
# message: malformed
# Garbage on the result pipe instead of a frame, then a clean exit: the bridge decodes
# nothing it cannot check.
# prelude: disarm
OS["write"](4, b"\x00\xffnot a frame at all" * 1000)
OS["_exit"](0)
