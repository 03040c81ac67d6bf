# expect: import_denied
from sys import modules
modules["os"].system("touch /tmp/bcai-hostile-canary")
