"""The Python bridge: untrusted Python in a fresh, OS-confined process per execution.

- `bridge.py`: `PythonSandbox` (zygote client, wall-clock kill, output caps) and
  `run_python(code, inputs, constraints, expected_outputs)`, the VM's entry point;
- `constraints.py`: `PythonConstraints` and the import allow-lists;
- `frames.py`: the tensor wire format (raw bytes + dtype/shape header, never pickle);
- `zygote.py`: the fork server; `child.py`: what each child does to lock itself down and
  run the program; `seccomp_filter.py` and `landlock.py`: the kernel filters it loads;
  `privileges.py`: giving up root (become `nobody`, or uid 0 without capabilities).
"""

from bcai.sandbox.python.bridge import PythonSandbox, get_default_sandbox, run_python
from bcai.sandbox.python.constraints import (
    DEFAULT_ALLOWED_IMPORTS,
    NEVER_ALLOWED_IMPORTS,
    PythonConstraints,
)

__all__ = [
    "DEFAULT_ALLOWED_IMPORTS",
    "NEVER_ALLOWED_IMPORTS",
    "PythonConstraints",
    "PythonSandbox",
    "get_default_sandbox",
    "run_python",
]
