# expect: import_denied
import ctypes
ctypes.CDLL(None).system(b"touch /tmp/bcai-hostile-canary")
