"""Compiling untrusted modules in a separate, bounded process.

Fuel and the epoch deadline bound a module while it runs, but compilation comes first and
Cranelift's cost is not linear in the module's size. Measured here (wasmtime 50, 2 busy
cores): 5 MB of one-byte functions (a million of them) took 120 s and 5.7 GB in the
caller; one 400 KB function of `i32.const 1; br_if 0` repeated took 113 s (quadratic:
100 KB took 9 s). In the caller's process that is a hang and unbounded memory in the
node.

So a `CompileWorker` process (kept warm, one per `WasmEngine`) compiles: it caps its own
address space (RLIMIT_AS) and the caller waits for its answer only `timeout_s`, kills it
past that, and starts a fresh one for the next module. The worker sends back wasmtime's
serialized artifact, which the caller deserializes into its own engine (same `Config`,
built by `compute_config`; wasmtime refuses an artifact of another configuration).
A module the worker cannot compile in budget is `SandboxInvalidModule`.

The worker is trusted code that runs the same compiler the caller would have run on the
same bytes; deserializing its artifact trusts nothing more than compiling in-process did.

Text (`.wat`) is parsed in the worker too: parsing is no cheaper (a million nested blocks
take ~400 MB).

Wire: request = 1 kind byte (b"W" binary, b"T" UTF-8 text) | u64 length | module;
answer = 1 status byte (b"O" artifact, b"E" error message) | u64 length | payload.
"""

from __future__ import annotations

import math
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time

import wasmtime

from bcai.errors import SandboxInvalidModule

_LENGTH = struct.Struct(">Q")
_SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from bcai.sandbox.wasm.compiler import main; main(sys.argv[2:])"
)
#: Compile budget defaults (per module; a cached module is not compiled again).
COMPILE_TIMEOUT_S = 30.0
COMPILE_MEMORY_BYTES = 2 << 30
#: The largest compiled artifact the caller takes in (machine code is ~1.1x a module's
#: size for ordinary code; SIMD lowerings expand more). Also the module cache's budget.
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024
_START_TIMEOUT_S = 60.0


def compute_config(metered: bool, interruptible: bool) -> wasmtime.Config:
    """The engine configuration: deterministic (NaN canonicalization, no threads, no
    shared memory, deterministic relaxed SIMD off), no memory64, GC, exceptions or
    components. Exceptions are off because their objects (exnref) live in the GC heap,
    which the store limit counts as a memory of its own: a module filled 512 MiB of
    linear memory and another 300 MiB of caught exceptions under a 512 MiB limit."""
    config = wasmtime.Config()
    config.consume_fuel = metered
    config.epoch_interruption = interruptible
    config.cranelift_nan_canonicalization = True
    config.wasm_threads = False
    config.shared_memory = False
    config.wasm_memory64 = False
    config.wasm_relaxed_simd = False
    config.wasm_relaxed_simd_deterministic = True
    config.wasm_gc = False
    config.wasm_exceptions = False
    config.wasm_component_model = False
    return config


class CompileWorker:
    """A warm compiler process with a memory cap; `compile` waits at most `timeout_s`."""

    def __init__(self, metered: bool, interruptible: bool, *, timeout_s: float = COMPILE_TIMEOUT_S, memory_bytes: int = COMPILE_MEMORY_BYTES) -> None:
        self._args = [str(int(metered)), str(int(interruptible)), str(int(memory_bytes))]
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def compile(self, module: bytes, is_text: bool = False) -> bytes:
        """The serialized artifact of `module` (binary, or UTF-8 text when `is_text`);
        raises SandboxInvalidModule."""
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write((b"T" if is_text else b"W") + _LENGTH.pack(len(module)) + module)
                proc.stdin.flush()
            except OSError:
                self._stop()
                raise SandboxInvalidModule("the module compiler process died before it read the module") from None
            deadline = time.monotonic() + self.timeout_s
            body: bytes | None = None
            timed_out = False
            try:
                head = _read_exact(proc.stdout.fileno(), 1 + _LENGTH.size, deadline)
                if head is not None:
                    size = _LENGTH.unpack(head[1:])[0]
                    if size > MAX_ARTIFACT_BYTES:
                        self._stop()
                        raise SandboxInvalidModule(f"the compiled module would take {size} bytes, over {MAX_ARTIFACT_BYTES}; it is refused")
                    body = _read_exact(proc.stdout.fileno(), size, deadline)
            except TimeoutError:
                head, timed_out = None, True
            except OSError:
                head = None
            if head is None or body is None:
                status = self._stop()
                if timed_out:
                    raise SandboxInvalidModule(f"compiling the module took longer than {self.timeout_s:g} s; it is refused")
                why = f"killed by {signal.Signals(-status).name}" if status is not None and status < 0 else f"exit status {status}"
                raise SandboxInvalidModule(f"compiling the module needed more than {self.memory_bytes} bytes of memory (the compiler process ended: {why}); it is refused")
        assert head is not None and body is not None
        if head[:1] == b"E":
            raise SandboxInvalidModule(body.decode("utf-8", "replace"))
        return body

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _SRC_ROOT, *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"LC_ALL": "C.UTF-8"},
            cwd="/",
        )
        return self._proc

    def _stop(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        proc.kill()
        status = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        return status


def _read_exact(fd: int, size: int, deadline: float) -> bytes | None:
    """`size` bytes from `fd`, or None at the end of the stream; TimeoutError past `deadline`."""
    chunks: list[bytes] = []
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while size > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if not poller.poll(max(1, math.ceil(remaining * 1000))):
            continue
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def main(args: list[str]) -> None:
    """The worker: compile each module read from stdin, answer on stdout, until EOF."""
    metered, interruptible, memory_bytes = bool(int(args[0])), bool(int(args[1])), int(args[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    engine = wasmtime.Engine(compute_config(metered, interruptible))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(1 + _LENGTH.size)
        if len(head) < 1 + _LENGTH.size:
            return
        data = stdin.read(_LENGTH.unpack(head[1:])[0])
        status, payload = b"O", b""
        try:
            wasm = bytes(wasmtime.wat2wasm(data.decode("utf-8"))) if head[:1] == b"T" else data
        except wasmtime.WasmtimeError as exc:
            status, payload = b"E", f"module text does not parse: {compute_error_line(exc)}".encode()
        if status == b"O":
            try:
                payload = bytes(wasmtime.Module(engine, wasm).serialize())
            except wasmtime.WasmtimeError as exc:
                status, payload = b"E", f"module does not validate: {compute_error_line(exc)}".encode()
        stdout.write(status + _LENGTH.pack(len(payload)) + payload)
        stdout.flush()


def compute_error_line(exc: BaseException) -> str:
    """The reason in a wasmtime error: after "Caused by:", the innermost cause (wasmtime
    numbers a chain "0: WebAssembly translation error / 1: too many locals ...")."""
    text = str(exc).strip()
    if "Caused by:" in text:
        causes = [line.strip() for line in text.split("Caused by:")[-1].strip().splitlines() if line.strip()]
        last = causes[-1] if causes else ""
        head, _, rest = last.partition(": ")
        return rest if head.isdigit() and rest else last or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
