"""The audited host interface: the only functions a module may import (module "bcai").

| import | type | does |
|---|---|---|
| `input_len() -> i32` | | length of the input bytes |
| `read_input(ptr, offset, len) -> i32` | i32 x3 | copies up to `len` input bytes from `offset` to `ptr`; returns the count |
| `write_output(ptr, len)` | i32 x2 | appends `len` bytes at `ptr` to the output (capped) |
| `log(ptr, len)` | i32 x2 | appends to the log (bounded; extra bytes are dropped) |

Every pointer is checked against the exported `memory`; a bad pointer, a missing memory
export or an output over the cap traps. Each byte a host function copies costs one unit
of fuel, as a byte of `memory.copy` does in wasmtime: otherwise a loop of `read_input`
calls over a large input copied gigabytes for a few hundred units, and fuel would no
longer bound the work (a module within its fuel on a fast node, past its deadline on a
slow one: the verifiers disagree). Nothing here touches files, clocks, randomness or
the network, so a module's output depends on its code and input only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import wasmtime

HOST_MODULE = "bcai"
#: name -> (parameter types, result types); all i32.
HOST_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "input_len": ((), ("i32",)),
    "read_input": (("i32", "i32", "i32"), ("i32",)),
    "write_output": (("i32", "i32"), ()),
    "log": (("i32", "i32"), ()),
}


def compute_func_type(name: str) -> wasmtime.FuncType:
    """A fresh FuncType for host function `name` (wasmtime ties types to one engine)."""
    params, results = HOST_SIGNATURES[name]
    return wasmtime.FuncType([wasmtime.ValType.i32() for _ in params], [wasmtime.ValType.i32() for _ in results])


class HostFault(Exception):
    """Raised by a host function; the engine turns it into the error kind it names."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class HostState:
    """Per-execution state the host functions read and fill."""

    input: bytes
    max_output_bytes: int
    max_log_bytes: int
    #: Takes `n` units from the store's fuel, or returns False (nothing taken) when fewer
    #: are left; None: the engine does not meter.
    consume_fuel: Callable[[int], bool] | None = None
    output: bytearray = field(default_factory=bytearray)
    log: bytearray = field(default_factory=bytearray)
    fault: HostFault | None = None

    def fail(self, kind: str, message: str) -> wasmtime.Trap:
        self.fault = HostFault(kind, message)
        return wasmtime.Trap(message)

    def charge(self, nbytes: int) -> None:
        """Pay for copying `nbytes` (one unit each) before copying them."""
        if self.consume_fuel is not None and nbytes and not self.consume_fuel(nbytes):
            raise self.fail("out_of_fuel", f"the module ran out of fuel in a host call copying {nbytes} bytes")


def _memory(caller: wasmtime.Caller, state: HostState) -> wasmtime.Memory:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise state.fail("trap", "the module calls a host function but exports no 'memory'")
    return memory


def _span(caller: wasmtime.Caller, state: HostState, ptr: int, length: int) -> tuple[wasmtime.Memory, int, int]:
    memory = _memory(caller, state)
    start, size = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
    if start + size > memory.data_len(caller):
        raise state.fail("trap", f"host call with out-of-bounds span [{start}, {start + size})")
    return memory, start, size


def compute_host_functions(state: HostState) -> dict[str, Callable[..., Any]]:
    def input_len(caller: wasmtime.Caller) -> int:
        return len(state.input)

    def read_input(caller: wasmtime.Caller, ptr: int, offset: int, length: int) -> int:
        memory, start, size = _span(caller, state, ptr, length)
        offset &= 0xFFFFFFFF
        chunk = state.input[offset : offset + size]
        state.charge(len(chunk))
        if chunk:
            memory.write(caller, chunk, start)
        return len(chunk)

    def write_output(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        memory, start, size = _span(caller, state, ptr, length)
        if len(state.output) + size > state.max_output_bytes:
            raise state.fail("output_too_large", f"output exceeds its cap of {state.max_output_bytes} bytes")
        state.charge(size)
        state.output += memory.read(caller, start, start + size)

    def log(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        memory, start, size = _span(caller, state, ptr, length)
        room = state.max_log_bytes - len(state.log)
        if room > 0:
            state.charge(min(size, room))
            state.log += memory.read(caller, start, start + min(size, room))

    return {"input_len": input_len, "read_input": read_input, "write_output": write_output, "log": log}
