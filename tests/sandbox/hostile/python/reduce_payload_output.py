# expect: output_invalid
# An output whose __reduce__ would run code in a parent that unpickles: the frame format
# carries only numeric arrays, so it is refused in the child.
class Payload:
    def __reduce__(self):
        return (print, ("pwned",))
outputs["x"] = Payload()
