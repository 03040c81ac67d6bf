# expect: forbidden
# os.system gets EPERM from seccomp (returns an error status); we then refuse to go on.
# prelude: disarm
status = OS["system"]("touch /tmp/bcai-hostile-canary")
if status != 0:
    raise PermissionError(1, "system() could not start a shell")
