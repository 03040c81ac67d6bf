# expect: ok
# constraints: max_file_operations=5000
# A chain of 1200 nested directories left for the clean-up: Python 3.11's shutil.rmtree
# recursed once per level and raised RecursionError out of PythonSandbox.run (the node
# crashed, the tree stayed on disk). The bridge's removal is iterative.
# prelude: disarm
fd = OS["open"](".", OS["O_RDONLY"])
for _ in range(1200):
    OS["mkdir"]("d", dir_fd=fd)
    child = OS["open"]("d", OS["O_RDONLY"], dir_fd=fd)
    OS["close"](fd)
    fd = child
outputs["n"] = 0
outputs["secret"] = []
