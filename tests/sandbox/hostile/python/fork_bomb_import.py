# expect: import_denied
import os
while True:
    os.fork()
