# expect: ok
# constraints: max_file_operations=4
# Leave symlinks to /tmp and to TARGET in the work dir for the parent's clean-up to follow
# (an rmtree that followed them would delete TARGET and the rest of /tmp). The parent
# reads nothing from the work dir and removes it without following links.
# prelude: disarm
OS["symlink"]("/tmp", "cache")
OS["symlink"]("TARGET", "result.npy")
OS["mkdir"]("nested")
OS["symlink"]("/tmp", "nested/tmp")
outputs["n"] = 0
outputs["secret"] = []
