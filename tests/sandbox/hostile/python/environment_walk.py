# expect: forbidden
OS = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__
OS["putenv"]("X", "1")
