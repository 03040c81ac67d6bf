"""The WASM engine: wasmtime with fuel, epoch deadlines, store limits, and no WASI.

- `engine.py`: `WasmEngine` (compile, execute), `run_wasm`, `verify_deterministic`;
- `limits.py`: `WasmLimits` and the presets (`default`, `strict`, `relaxed`);
- `host.py`: the audited host functions a module may import (`bcai.*`).
"""

from bcai.sandbox.wasm.engine import (
    DeterminismReport,
    WasmEngine,
    compute_module_bytes,
    get_default_engine,
    run_wasm,
    verify_deterministic,
)
from bcai.sandbox.wasm.host import HOST_MODULE, HOST_SIGNATURES
from bcai.sandbox.wasm.limits import (
    DEFAULT_FUEL,
    OUTPUT_CAP_EVALUATION,
    OUTPUT_CAP_TASK,
    PRESETS,
    WasmLimits,
    get_preset,
)

__all__ = [
    "DEFAULT_FUEL",
    "DeterminismReport",
    "HOST_SIGNATURES",
    "HOST_MODULE",
    "OUTPUT_CAP_EVALUATION",
    "OUTPUT_CAP_TASK",
    "PRESETS",
    "WasmEngine",
    "WasmLimits",
    "compute_module_bytes",
    "get_default_engine",
    "get_preset",
    "run_wasm",
    "verify_deterministic",
]
