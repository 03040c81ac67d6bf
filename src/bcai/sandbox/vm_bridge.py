"""The VM's `PythonExecute` runs here: `SandboxPythonBridge` implements the VM's
`PythonBridge` on the sandboxed Python process (`bcai.sandbox.python`).

The instruction's `PythonConstraints` (VM side, canonically encoded in the program) map
onto the sandbox's limits under this node's ceiling: a program is written by whoever
posted it, so it gets the smaller of the memory, time and file operations it asks for
and the bridge's `max_memory_mb` / `max_execution_time_ms` / `max_file_operations`
(files are disk: a program asking for the constraint's maximum, a million files of
16 MiB, could otherwise fill the node's disk for as long as it runs), and network
access only where the node
granted it (`allow_network`); a program that asks for the network on a node that does not
grant it fails at once with `sandbox_network_denied`. The program's outputs come back as numpy arrays
(never unpickled), and any sandbox failure is raised as its `SandboxError` leaf, so a
hostile `PythonExecute` fails the VM run with a clear error kind.
"""

from __future__ import annotations

from typing import Any

from bcai.errors import SandboxNetworkDenied
from bcai.sandbox.python import PythonConstraints as SandboxConstraints
from bcai.sandbox.python import PythonSandbox, run_python


class SandboxPythonBridge:
    def __init__(self, sandbox: PythonSandbox | None = None, *, max_memory_mb: int = 4096,
                 max_execution_time_ms: int = 600_000, max_file_operations: int = 1000,
                 allow_network: bool = False) -> None:
        self.sandbox = sandbox
        self.max_memory_mb = max_memory_mb
        self.max_execution_time_ms = max_execution_time_ms
        self.max_file_operations = max_file_operations
        self.allow_network = allow_network

    def execute(self, code: str, inputs: dict[str, Any], constraints: Any) -> dict[str, Any]:
        if constraints.network_access and not self.allow_network:
            raise SandboxNetworkDenied("the program asks for network access and this node does not grant it "
                                       "(SandboxPythonBridge(allow_network=True))")
        limits = SandboxConstraints(
            max_memory_mb=min(int(constraints.max_memory_mb), self.max_memory_mb),
            max_execution_time_ms=min(int(constraints.max_execution_time_ms), self.max_execution_time_ms),
            allowed_imports=frozenset(constraints.allowed_imports),
            max_file_operations=min(int(constraints.max_file_operations), self.max_file_operations),
            network_access=bool(constraints.network_access),
        )
        run = self.sandbox.run if self.sandbox is not None else run_python
        result = run(code, inputs, limits, None)
        result.raise_for_error()
        return dict(result.outputs)
