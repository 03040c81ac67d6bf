"""The shell: `WasmEngine` runs WASM modules under fuel, an epoch deadline and store limits.

One wasmtime `Engine` per `WasmEngine` (configured for determinism: NaN canonicalization,
no threads or shared memory, deterministic relaxed SIMD), compiled modules cached by
hash, and one ticker thread that bumps the engine's epoch every `tick_ms` while an
execution is in flight. Each execution gets a fresh `Store` (fuel, limits, epoch
deadline), a fresh `Linker` with the host functions of `host.py`, and no WASI.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Callable, Sequence

import wasmtime

from bcai.errors import SandboxInvalidModule
from bcai.sandbox.wasm.compiler import (
    COMPILE_MEMORY_BYTES,
    COMPILE_TIMEOUT_S,
    MAX_ARTIFACT_BYTES,
    CompileWorker,
    compute_config,
    compute_error_line,
)
from bcai.sandbox.result import ExecutionMetrics, ExecutionResult, compute_error, compute_ok
from bcai.sandbox.wasm.host import HOST_MODULE, HOST_SIGNATURES, HostState, compute_func_type, compute_host_functions
from bcai.sandbox.wasm.limits import WasmLimits

WASM_MAGIC = b"\0asm"
MAX_MODULE_BYTES = 64 * 1024 * 1024
#: How close to its memory cap a failed module must be for the failure to count as
#: memory_limit (covers grow loops of up to 16 pages per step).
GROW_SLACK_BYTES = 16 * 65536
_MODULE_CACHE_SIZE = 32
#: wasmtime-py lists an instance's exports in O(n^2) (export_nth walks from the start):
#: 10 000 exports took 1.9 s and 100 000 took 187 s of the caller's CPU, GIL held. A
#: scoring module needs a handful; these caps keep every such walk trivial.
MAX_EXPORTS = 1024
MAX_IMPORTS = 256
#: Compiled code the cache may hold in all (machine code is ~1.1x the module's size, so
#: 32 modules of 30 MB would otherwise pin ~1 GB in the caller).
MODULE_CACHE_BYTES = MAX_ARTIFACT_BYTES


class EpochTicker:
    """Increments an engine's epoch every `tick_ms` while at least one execution runs."""

    def __init__(self, engine: wasmtime.Engine, tick_ms: int) -> None:
        self._engine = engine
        self._tick_s = tick_ms / 1000
        self._active = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EpochTicker:
        with self._cond:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="bcai-wasm-epoch", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1

    def _loop(self) -> None:
        # Ticks follow an absolute schedule, so a late wake-up is caught up, not lost.
        next_tick = time.monotonic()
        while True:
            with self._cond:
                if self._active == 0:
                    while self._active == 0:
                        self._cond.wait()
                    next_tick = time.monotonic()
            next_tick += self._tick_s
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._engine.increment_epoch()


def split_source(source: bytes | str) -> tuple[bool, bytes]:
    """(is_text, bytes): WASM binary as is, or `.wat` text as UTF-8, size-checked and not
    parsed (the compiler process parses text: 1M nested blocks take ~400 MB to parse).
    Raises SandboxInvalidModule."""
    if isinstance(source, str):
        text = source
    elif isinstance(source, (bytes, bytearray)):
        if bytes(source[:4]) == WASM_MAGIC:
            if len(source) > MAX_MODULE_BYTES:
                raise SandboxInvalidModule(f"module is {len(source)} bytes, over {MAX_MODULE_BYTES}")
            return False, bytes(source)
        try:
            text = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            raise SandboxInvalidModule("module is neither WASM binary (no \\0asm magic) nor UTF-8 text") from None
    else:
        raise SandboxInvalidModule(f"module source must be bytes or str, got {type(source).__name__}")
    if len(text) > MAX_MODULE_BYTES:
        raise SandboxInvalidModule(f"module text is over {MAX_MODULE_BYTES} bytes")
    return True, text.encode("utf-8")


def compute_module_bytes(source: bytes | str) -> bytes:
    """WASM binary from binary or text (`.wat`) source, parsed in this process (trusted
    sources only: tools, tests); raises SandboxInvalidModule."""
    is_text, data = split_source(source)
    if not is_text:
        return data
    try:
        return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
    except wasmtime.WasmtimeError as exc:
        raise SandboxInvalidModule(f"module text does not parse: {_first_line(exc)}") from None


_first_line = compute_error_line


class WasmEngine:
    """Compiles and runs WASM modules deterministically, metered and bounded.

    `metered=False` turns fuel off (for benchmarks only: production always meters);
    `interruptible=False` turns the epoch deadline off likewise.
    Modules compile in a separate process (`compiler.py`) that may use `compile_timeout_s`
    and `compile_memory_bytes` per module; past either the module is `invalid_module`.
    """

    def __init__(
        self, *, metered: bool = True, interruptible: bool = True, tick_ms: int = 10,
        compile_timeout_s: float = COMPILE_TIMEOUT_S, compile_memory_bytes: int = COMPILE_MEMORY_BYTES,
    ) -> None:
        config = compute_config(metered, interruptible)
        self._compiler = CompileWorker(metered, interruptible, timeout_s=compile_timeout_s, memory_bytes=compile_memory_bytes)
        self.metered = metered
        self.interruptible = interruptible
        self.tick_ms = tick_ms
        self.engine = wasmtime.Engine(config)
        self._ticker = EpochTicker(self.engine, tick_ms)
        self._modules: OrderedDict[bytes, tuple[wasmtime.Module, int]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def compile(self, source: bytes | str) -> wasmtime.Module:
        """Compile (or fetch from the cache) and check the imports; raises SandboxInvalidModule."""
        is_text, data = split_source(source)
        key = hashlib.sha256((b"wat\0" if is_text else b"") + data).digest()
        with self._lock:
            cached = self._modules.get(key)
            if cached is not None:
                self._modules.move_to_end(key)
                return cached[0]
        artifact = self._compiler.compile(data, is_text)  # bounded in time and memory; raises
        try:
            module = wasmtime.Module.deserialize(self.engine, artifact)
        except wasmtime.WasmtimeError as exc:
            raise SandboxInvalidModule(f"the compiled module does not load: {_first_line(exc)}") from None
        check_counts(module)
        check_imports(module)
        with self._lock:
            if key not in self._modules:
                self._modules[key] = (module, len(artifact))
                self._cached_bytes += len(artifact)
            while len(self._modules) > 1 and (len(self._modules) > _MODULE_CACHE_SIZE or self._cached_bytes > MODULE_CACHE_BYTES):
                self._cached_bytes -= self._modules.popitem(last=False)[1][1]
        return module

    @property
    def cached_bytes(self) -> int:
        """Compiled code the module cache holds (bounded by MODULE_CACHE_BYTES)."""
        return self._cached_bytes

    def close(self) -> None:
        """Stop the compiler process (a later compile starts a new one)."""
        self._compiler.close()

    def execute(
        self,
        source: bytes | str,
        input: bytes = b"",
        *,
        entry: str = "run",
        limits: WasmLimits | None = None,
    ) -> ExecutionResult:
        """Run export `entry` of the module on `input`; failures are results, not raises."""
        limits = limits if limits is not None else WasmLimits()
        start = time.perf_counter()
        cpu_start = time.thread_time()

        def metrics(fuel_used: int | None = None, memory: int = 0) -> ExecutionMetrics:
            return ExecutionMetrics(
                wall_time_ms=(time.perf_counter() - start) * 1000,
                cpu_time_ms=(time.thread_time() - cpu_start) * 1000,
                peak_memory_bytes=memory,
                fuel_used=fuel_used,
            )

        if not isinstance(input, (bytes, bytearray)):
            return compute_error("invalid_module", "input must be bytes", metrics())
        if len(input) > limits.max_input_bytes:
            return compute_error("invalid_module", f"input is {len(input)} bytes, over {limits.max_input_bytes}", metrics())
        try:
            module = self.compile(source)
            check_entry(module, entry)
        except SandboxInvalidModule as exc:
            return compute_error("invalid_module", str(exc), metrics())
        store = wasmtime.Store(self.engine)
        state = HostState(bytes(input), limits.max_output_bytes, limits.max_log_bytes, _fuel_taker(store) if self.metered else None)
        store.set_limits(
            memory_size=limits.max_memory_bytes,
            table_elements=limits.max_table_elements,
            instances=1,
            tables=8,
            memories=1,
        )
        if self.metered:
            store.set_fuel(limits.fuel)
        if self.interruptible:
            store.set_epoch_deadline(math.ceil(limits.timeout_ms / self.tick_ms) + 1)
        linker = wasmtime.Linker(self.engine)
        for name, host_func in compute_host_functions(state).items():
            linker.define_func(HOST_MODULE, name, compute_func_type(name), host_func, access_caller=True)
        instance: wasmtime.Instance | None = None
        failure: BaseException | None = None
        returned = None
        with self._ticker:
            try:
                instance = linker.instantiate(store, module)
                entry_func = instance.exports(store)[entry]
                if not isinstance(entry_func, wasmtime.Func):  # check_entry ruled this out
                    raise wasmtime.WasmtimeError(f"export {entry!r} is not a function")
                returned = entry_func(store)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                failure = exc
            except Exception as exc:  # a host function's own exception, re-raised by wasmtime-py
                failure = exc
        fuel_used = limits.fuel - store.get_fuel() if self.metered else None
        memory = 0
        if instance is not None:
            exported = instance.exports(store).get("memory")
            if isinstance(exported, wasmtime.Memory):
                memory = exported.data_len(store)
        log = state.log.decode("utf-8", errors="replace")
        if failure is None:
            output = bytes(state.output)
            result = compute_ok({"output": output}, metrics(fuel_used, memory), log, hashlib.sha256(output).hexdigest())
            if returned is not None:
                result = _with_return(result, returned)
            return result
        kind, message = _classify(failure, state, instance is None, memory, limits)
        if kind == "timeout":
            fuel_used = None  # wasmtime does not report the fuel left after an epoch trap
        return compute_error(kind, message, metrics(fuel_used, memory), log)


def _fuel_taker(store: wasmtime.Store) -> Callable[[int], bool]:
    """`HostState.consume_fuel` for `store`: host functions pay for the bytes they copy."""

    def consume(units: int) -> bool:
        left = store.get_fuel()
        if units > left:
            store.set_fuel(0)
            return False
        store.set_fuel(left - units)
        return True

    return consume


def _with_return(result: ExecutionResult, returned: object) -> ExecutionResult:
    return replace(result, extra=MappingProxyType({"return_value": returned}))


def _classify(
    failure: BaseException, state: HostState, instantiating: bool, memory: int, limits: WasmLimits
) -> tuple[str, str]:
    if state.fault is not None:
        return state.fault.kind, str(state.fault)
    if isinstance(failure, wasmtime.Trap):
        # memory.grow past the store limit returns -1 instead of trapping (wasmtime-py
        # exposes no grow hook); a module that then fails in any way (trap, fuel,
        # deadline) with its memory within GROW_SLACK of the cap failed because of it.
        if memory > 0 and memory + GROW_SLACK_BYTES > limits.max_memory_bytes:
            return "memory_limit", f"the module reached its memory limit ({limits.max_memory_bytes} bytes) and then failed: {_first_line(failure)}"
        code = failure.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return "out_of_fuel", f"the module used its whole fuel budget ({limits.fuel})"
        if code == wasmtime.TrapCode.INTERRUPT:
            return "timeout", f"the module ran past its {limits.timeout_ms} ms wall-clock limit"
        return "trap", _first_line(failure)
    text = str(failure)
    if instantiating and "memory" in text and ("limit" in text or "exceeds" in text or "minimum" in text):
        return "memory_limit", f"the module's memory does not fit its limit ({limits.max_memory_bytes} bytes): {_first_line(failure)}"
    if instantiating and ("table" in text or "instance" in text) and ("limit" in text or "exceeds" in text or "minimum" in text):
        return "memory_limit", f"the module's tables do not fit their limit: {_first_line(failure)}"
    if instantiating:
        return "invalid_module", f"the module does not instantiate: {_first_line(failure)}"
    return "trap", _first_line(failure)


def check_counts(module: wasmtime.Module) -> None:
    """At most MAX_EXPORTS exports and MAX_IMPORTS imports (see MAX_EXPORTS)."""
    exports, imports = len(module.exports), len(module.imports)
    if exports > MAX_EXPORTS:
        raise SandboxInvalidModule(f"module has {exports} exports, over {MAX_EXPORTS}")
    if imports > MAX_IMPORTS:
        raise SandboxInvalidModule(f"module has {imports} imports, over {MAX_IMPORTS}")


def check_imports(module: wasmtime.Module) -> None:
    """Only the host functions of `host.py`, with their exact types; nothing else."""
    for imp in module.imports:
        expected = HOST_SIGNATURES.get(imp.name or "") if imp.module == HOST_MODULE else None
        if expected is None:
            raise SandboxInvalidModule(
                f"module imports {imp.module}.{imp.name}, which the host does not provide "
                f"(only {HOST_MODULE}.{{{', '.join(HOST_SIGNATURES)}}}; no WASI)"
            )
        ty = imp.type
        if not isinstance(ty, wasmtime.FuncType) or (
            tuple(str(t) for t in ty.params), tuple(str(t) for t in ty.results)
        ) != expected:
            raise SandboxInvalidModule(f"module imports {imp.module}.{imp.name} with the wrong type")


def check_entry(module: wasmtime.Module, entry: str) -> None:
    for export in module.exports:
        if export.name == entry:
            ty = export.type
            if not isinstance(ty, wasmtime.FuncType):
                raise SandboxInvalidModule(f"export {entry!r} is not a function")
            if ty.params or [str(r) for r in ty.results] not in ([], ["i32"]):
                raise SandboxInvalidModule(f"entry {entry!r} must take no parameters and return nothing or an i32")
            return
    raise SandboxInvalidModule(f"module exports no function {entry!r}")


@dataclass(frozen=True)
class DeterminismReport:
    """Outcome of running one module several times: equal iff every run agrees."""

    deterministic: bool
    output_sha256s: tuple[str | None, ...]
    results: tuple[ExecutionResult, ...]


def verify_deterministic(
    source: bytes | str,
    input: bytes = b"",
    *,
    entry: str = "run",
    limits: WasmLimits | None = None,
    engines: Sequence[WasmEngine] | None = None,
    runs: int = 2,
) -> DeterminismReport:
    """Run the module `runs` times (on each of `engines`, or on fresh engines) and compare
    status, error kind, output hash and fuel used."""
    if runs < 2:
        raise ValueError("verify_deterministic needs at least two runs")
    executors = list(engines) if engines else [WasmEngine() for _ in range(runs)]
    try:
        results = tuple(executors[i % len(executors)].execute(source, input, entry=entry, limits=limits) for i in range(max(runs, len(executors))))
    finally:
        if not engines:  # ours: stop their compiler processes now, not at garbage collection
            for executor in executors:
                executor.close()
    signatures = {(r.status, r.error_kind, r.output_sha256, r.metrics.fuel_used) for r in results}
    return DeterminismReport(len(signatures) == 1, tuple(r.output_sha256 for r in results), results)


_default_engine: WasmEngine | None = None
_default_lock = threading.Lock()


def get_default_engine() -> WasmEngine:
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = WasmEngine()
        return _default_engine


def run_wasm(source: bytes | str, input: bytes = b"", *, entry: str = "run", limits: WasmLimits | None = None) -> ExecutionResult:
    """Run a module on the process-wide default engine; see `WasmEngine.execute`."""
    return get_default_engine().execute(source, input, entry=entry, limits=limits)
