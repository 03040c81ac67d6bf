# expect: forbidden
outputs["passwd"] = list(open("/etc/passwd", "rb").read())
