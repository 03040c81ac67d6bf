# expect: output_invalid
outputs["x"] = object()
