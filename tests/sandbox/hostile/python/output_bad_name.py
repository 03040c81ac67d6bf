# expect: output_invalid
outputs["../../etc/passwd"] = 1
