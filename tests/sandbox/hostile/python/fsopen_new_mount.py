# expect: forbidden
# message: Errno 1
# The new mount API: fsopen a tmpfs to build a private mount (then move_mount it over
# a path), past the refused mount().
# prelude: disarm
# prelude: syscall
fs = sc(430, b'tmpfs', 0)
sc(431, fs, 6, 0, 0, 0)  # FSCONFIG_CMD_CREATE
outputs['mnt'] = sc(432, fs, 0, 0)
