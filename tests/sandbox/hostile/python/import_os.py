# expect: import_denied
import os
outputs["n"] = len(os.listdir("/"))
