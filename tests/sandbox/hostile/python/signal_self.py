# expect: crashed
OS = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0].__init__.__globals__
# Killing itself is allowed (it only ends the program) and reported as a crash.
guard = None
OS["sys"].modules["signal"].raise_signal(9)
