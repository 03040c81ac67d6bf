# expect: forbidden
# The audit hook is disarmed: Landlock alone refuses the open.
# prelude: disarm
outputs["passwd"] = list(open("/etc/passwd", "rb").read())
