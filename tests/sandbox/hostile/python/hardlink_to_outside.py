# expect: forbidden
# constraints: max_file_operations=10
# A hard link in the work dir to a file outside (to write it, or to make the parent's
# clean-up touch it): Landlock refuses to link across its rule boundary (EXDEV, now
# reported forbidden); as `nobody`, protected_hardlinks refuses first (EPERM).
# prelude: disarm
OS["link"]("TARGET", "result.npy")
open("result.npy", "w").write("pwned")
