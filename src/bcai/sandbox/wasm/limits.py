"""`WasmLimits` and the presets of SPEC section D. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bcai.errors import ConfigError

MB = 1024 * 1024
DEFAULT_FUEL = 10**10
#: Output caps by purpose: an evaluator's verdict data vs a task's result.
OUTPUT_CAP_EVALUATION = 64 * MB
OUTPUT_CAP_TASK = 16 * MB
MAX_FUEL = 1 << 62


@dataclass(frozen=True)
class WasmLimits:
    """Limits of one WASM execution.

    - `fuel`: instruction budget (wasmtime fuel; roughly one unit per instruction);
    - `timeout_ms`: wall-clock limit, enforced by epoch interruption;
    - `max_memory_bytes`: linear memory (store limit: instantiation fails above it,
      `memory.grow` returns -1);
    - `max_output_bytes`: what `write_output` accepts in total;
    - `max_log_bytes`: what `log` keeps (the rest is dropped, not an error);
    - `max_input_bytes`: the largest input the host hands in.
    """

    fuel: int = DEFAULT_FUEL
    timeout_ms: int = 30_000
    max_memory_bytes: int = 512 * MB
    max_output_bytes: int = OUTPUT_CAP_EVALUATION
    max_log_bytes: int = 64 * 1024
    max_input_bytes: int = 256 * MB
    max_table_elements: int = 100_000

    def __post_init__(self) -> None:
        for name, low, high in (
            ("fuel", 1, MAX_FUEL),
            ("timeout_ms", 1, 3_600_000),
            ("max_memory_bytes", 0, 1 << 36),
            ("max_output_bytes", 0, 1 << 34),
            ("max_log_bytes", 0, 1 << 24),
            ("max_input_bytes", 0, 1 << 34),
            ("max_table_elements", 0, 1 << 24),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")

    def for_task(self) -> WasmLimits:
        """The same limits with the task output cap (16 MB)."""
        return replace(self, max_output_bytes=min(self.max_output_bytes, OUTPUT_CAP_TASK))


PRESETS: dict[str, WasmLimits] = {
    "default": WasmLimits(),
    "strict": WasmLimits(timeout_ms=10_000, max_memory_bytes=256 * MB),
    "relaxed": WasmLimits(timeout_ms=60_000, max_memory_bytes=1024 * MB),
}


def get_preset(name: str) -> WasmLimits:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown WASM preset {name!r}; choose one of {', '.join(PRESETS)}") from None
