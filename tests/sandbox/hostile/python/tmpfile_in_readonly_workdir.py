# expect: forbidden
# message: Errno 13
# O_TMPFILE: a file with no name, invisible to the bridge's entry count, in a work dir
# that no file operations were granted for (and then in /tmp). Landlock's read-only rule
# covers unnamed files too.
# prelude: disarm
for where in ("/tmp", "."):
    try:
        fd = OS["open"](where, OS["O_TMPFILE"] | OS["O_RDWR"], 0o600)
    except PermissionError as exc:
        last = exc
    else:
        OS["write"](fd, b"x" * (1 << 20))
        outputs[where.strip("/.") or "workdir"] = fd
raise last
