# expect: output_invalid
# A result frame that is really an .npy file with a huge header (np.lib.format would
# parse a dict literal of any size): the parent reads frames, never .npy.
# prelude: disarm
OS["write"](4, b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 65535)
OS["_exit"](0)
