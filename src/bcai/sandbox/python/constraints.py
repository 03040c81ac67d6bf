"""`PythonConstraints`: the limits of one Python execution (SPEC section C), validated.

Pure data. The bridge turns each field into OS limits in the child (see `child.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bcai.errors import ConfigError
from bcai.sandbox.python.frames import is_valid_name

#: Modules every program may import: pure computation, no I/O, no introspection escape
#: hatches. Anything else must be granted in `allowed_imports`.
DEFAULT_ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {"numpy", "math", "cmath", "random", "statistics", "itertools", "functools", "operator",
     "collections", "heapq", "bisect", "array", "json", "re", "string", "dataclasses",
     "typing", "decimal", "fractions", "copy", "enum", "abc", "numbers"}
)
#: Modules no grant can unlock: they hand out raw memory or process control.
NEVER_ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {"ctypes", "_ctypes", "cffi", "gc", "_posixsubprocess", "posix", "_thread", "threading",
     "multiprocessing", "_multiprocessing", "signal", "sys", "builtins", "importlib", "_imp",
     "marshal", "pickle", "_pickle", "code", "codeop", "inspect", "faulthandler",
     "_xxsubinterpreters", "_interpreters", "pty", "resource", "mmap"}
)

MAX_MEMORY_MB = 64 * 1024
MAX_EXECUTION_TIME_MS = 3_600_000


@dataclass(frozen=True)
class PythonConstraints:
    """Limits of one execution.

    - `max_memory_mb`: address space the program may add on top of the warm interpreter
      (~100 MB with numpy) and its decoded inputs (RLIMIT_AS).
    - `max_execution_time_ms`: wall-clock limit (the parent kills the process) and, rounded
      up to whole seconds, the CPU-time limit (RLIMIT_CPU).
    - `allowed_imports`: top-level module names the program may import, on top of
      `DEFAULT_ALLOWED_IMPORTS`; names in `NEVER_ALLOWED_IMPORTS` are refused.
    - `max_file_operations`: opens, listings, renames, removals ... inside the private
      work dir; files elsewhere are never reachable.
    - `network_access`: sockets allowed (still as an unprivileged user) when True.
    """

    max_memory_mb: int = 256
    max_execution_time_ms: int = 5_000
    allowed_imports: frozenset[str] = field(default_factory=frozenset)
    max_file_operations: int = 0
    network_access: bool = False
    max_output_bytes: int = 64 * 1024 * 1024
    max_file_size_mb: int = 16
    max_open_files: int = 32
    max_log_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_imports", frozenset(self.allowed_imports))
        _check_int("max_memory_mb", self.max_memory_mb, 1, MAX_MEMORY_MB)
        _check_int("max_execution_time_ms", self.max_execution_time_ms, 1, MAX_EXECUTION_TIME_MS)
        _check_int("max_file_operations", self.max_file_operations, 0, 1_000_000)
        _check_int("max_output_bytes", self.max_output_bytes, 0, 1 << 34)
        _check_int("max_file_size_mb", self.max_file_size_mb, 0, 1 << 20)
        _check_int("max_open_files", self.max_open_files, 0, 4096)
        _check_int("max_log_bytes", self.max_log_bytes, 0, 1 << 24)
        if not isinstance(self.network_access, bool):
            raise ConfigError("network_access must be a bool")
        for name in self.allowed_imports:
            if not isinstance(name, str) or not all(is_valid_name(p) for p in name.split(".")):
                raise ConfigError(f"allowed import {name!r} is not a module name")
            if name.split(".")[0] in NEVER_ALLOWED_IMPORTS:
                raise ConfigError(f"module {name!r} can never be allowed in the sandbox")

    def get_allowed_imports(self) -> frozenset[str]:
        return DEFAULT_ALLOWED_IMPORTS | {name.split(".")[0] for name in self.allowed_imports}

    def to_wire(self) -> dict[str, Any]:
        return {
            "max_memory_mb": self.max_memory_mb,
            "max_execution_time_ms": self.max_execution_time_ms,
            "allowed_imports": sorted(self.get_allowed_imports()),
            "max_file_operations": self.max_file_operations,
            "network_access": self.network_access,
            "max_output_bytes": self.max_output_bytes,
            "max_file_size_mb": self.max_file_size_mb,
            "max_open_files": self.max_open_files,
            "max_log_bytes": self.max_log_bytes,
        }


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
