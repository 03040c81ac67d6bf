"""What a sandboxed execution returns, for both engines: a frozen `ExecutionResult`.

A result is data, not an exception: the VM records a failed `PythonExecute` (and meters
it) just like a successful one. `raise_for_error()` turns an error result into the
matching `SandboxError` leaf for callers that prefer exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Mapping

from bcai.errors import SANDBOX_ERRORS, SandboxError

Status = Literal["ok", "error"]

#: Error kinds of the Python bridge.
PYTHON_ERROR_KINDS = frozenset(
    {
        "memory_limit",
        "time_limit",
        "import_denied",
        "file_ops_limit",
        "network_denied",
        "forbidden",
        "output_invalid",
        "output_too_large",
        "crashed",
    }
)
#: Error kinds of the WASM engine.
WASM_ERROR_KINDS = frozenset(
    {"out_of_fuel", "timeout", "memory_limit", "trap", "invalid_module", "output_too_large"}
)


@dataclass(frozen=True)
class ExecutionMetrics:
    """Resource use of one execution. `fuel_used` is None for the Python bridge."""

    wall_time_ms: float
    cpu_time_ms: float
    peak_memory_bytes: int
    fuel_used: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_time_ms": round(self.wall_time_ms, 3),
            "cpu_time_ms": round(self.cpu_time_ms, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
            "fuel_used": self.fuel_used,
        }


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one sandboxed execution.

    `outputs` maps names to values: numpy arrays for the Python bridge, one `bytes` value
    under "output" for WASM. `log` holds what the code printed (bounded).
    """

    status: Status
    error_kind: str | None
    message: str
    outputs: Mapping[str, Any]
    metrics: ExecutionMetrics
    log: str = ""
    output_sha256: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def raise_for_error(self) -> None:
        """Raise the `SandboxError` leaf matching `error_kind`; do nothing when ok."""
        if self.status == "ok":
            return
        raise SANDBOX_ERRORS.get(self.error_kind or "", SandboxError)(self.message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (outputs as name -> dtype/shape, not the data)."""
        outputs: dict[str, Any] = {}
        for name, value in self.outputs.items():
            if isinstance(value, (bytes, bytearray)):
                outputs[name] = {"bytes": len(value)}
            else:
                outputs[name] = {"dtype": str(value.dtype), "shape": list(value.shape)}
        return {
            "status": self.status,
            "error_kind": self.error_kind,
            "message": self.message,
            "metrics": self.metrics.to_dict(),
            "outputs": outputs,
            "output_sha256": self.output_sha256,
            "log": self.log,
        }


def compute_ok(
    outputs: Mapping[str, Any], metrics: ExecutionMetrics, log: str = "", output_sha256: str | None = None
) -> ExecutionResult:
    return ExecutionResult("ok", None, "", MappingProxyType(dict(outputs)), metrics, log, output_sha256)


def compute_error(
    kind: str, message: str, metrics: ExecutionMetrics, log: str = ""
) -> ExecutionResult:
    if kind not in SANDBOX_ERRORS:
        raise ValueError(f"unknown sandbox error kind {kind!r}")
    return ExecutionResult("error", kind, message, MappingProxyType({}), metrics, log)
