"""The VM's `PythonExecute` runs here: `SandboxPythonBridge` implements the VM's
`PythonBridge` on the sandboxed Python process (`bcai.sandbox.python`).

The instruction's `PythonConstraints` (VM side, canonically encoded in the program) map
one to one onto the sandbox's limits; the program's outputs come back as numpy arrays
(never unpickled), and any sandbox failure is raised as its `SandboxError` leaf, so a
hostile `PythonExecute` fails the VM run with a clear error kind.
"""

from __future__ import annotations

from typing import Any

from bcai.sandbox.python import PythonConstraints as SandboxConstraints
from bcai.sandbox.python import PythonSandbox, run_python


class SandboxPythonBridge:
    def __init__(self, sandbox: PythonSandbox | None = None) -> None:
        self.sandbox = sandbox

    def execute(self, code: str, inputs: dict[str, Any], constraints: Any) -> dict[str, Any]:
        limits = SandboxConstraints(
            max_memory_mb=int(constraints.max_memory_mb),
            max_execution_time_ms=int(constraints.max_execution_time_ms),
            allowed_imports=frozenset(constraints.allowed_imports),
            max_file_operations=int(constraints.max_file_operations),
            network_access=bool(constraints.network_access),
        )
        run = self.sandbox.run if self.sandbox is not None else run_python
        result = run(code, inputs, limits, None)
        result.raise_for_error()
        return dict(result.outputs)
