"""Execution sandboxes for code a node did not write.

- `result.py`: `ExecutionResult` and `ExecutionMetrics`, shared by both engines;
- `python/`: the Python bridge (`run_python`, `PythonSandbox`, `PythonConstraints`);
- `wasm/`: the WASM engine (`WasmEngine`, `WasmLimits`, presets, `verify_deterministic`).
"""

from bcai.sandbox.python import PythonConstraints, PythonSandbox, run_python
from bcai.sandbox.result import ExecutionMetrics, ExecutionResult

__all__ = ["ExecutionMetrics", "ExecutionResult", "PythonConstraints", "PythonSandbox", "run_python"]
