# expect: import_denied
import subprocess
subprocess.run(["sh", "-c", "echo pwned > /tmp/bcai-hostile-canary"])
