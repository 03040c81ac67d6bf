# expect: forbidden
# message: Errno 13
# List the directory holding every job's work dir to find a neighbour's.
# prelude: disarm
outputs["n"] = len(OS["listdir"](OS["path"].dirname(OS["getcwd"]())))
