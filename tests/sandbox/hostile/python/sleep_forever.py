# expect: time_limit
# constraints: allowed_imports=time
# Blocking without CPU use: only the wall-clock kill ends it.
import time
time.sleep(3600)
