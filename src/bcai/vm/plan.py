"""Planning: compile an instruction list to slot-indexed kernel calls, and cost it.

`compile_steps` assigns every tensor id a slot (state first, shared by all entries), binds
each instruction's kernel, and computes after which step every temporary is last used, so
the interpreter frees it right there (reference counting resolved at compile time).

`compute_costs` runs the compiled steps on `meta` tensors (shapes and dtypes, no data):
this is the shape/dtype check (a torch error becomes `ShapeMismatch` or `DtypeMismatch`
naming the instruction) and yields, per step, FLOPs, gas and the live tensor bytes, so
memory and gas limits are enforced *before* anything runs or any state changes. Costs
depend only on the feed shapes and are cached per shape signature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from bcai.errors import BcaiError, DtypeMismatch, GasExhausted, MemoryLimitExceeded, ShapeMismatch
from bcai.vm import gas, isa
from bcai.vm.kernels import Kernel, KernelContext, make_kernel
from bcai.vm.validate import where


@dataclass(frozen=True, slots=True)
class Step:
    kernel: Kernel
    reads: tuple[int | None, ...]
    writes: tuple[int | None, ...]
    frees: tuple[int, ...]
    label: str
    instr: isa.Instruction


@dataclass(frozen=True, slots=True)
class Costs:
    """Planned cost of one run for one feed-shape signature."""

    flops: int
    gas: int
    peak_bytes: int
    step_gas: tuple[int, ...]
    step_live_bytes: tuple[int, ...]


@dataclass
class CompiledSteps:
    steps: list[Step]
    n_slots: int
    input_slots: tuple[int, ...]
    output_slots: tuple[int, ...]
    needs_grad: bool
    costs: dict[tuple[Any, ...], Costs] = field(default_factory=dict)


def _flat_reads(instr: isa.Instruction) -> list[str | None]:
    out: list[str | None] = []
    for name in instr.reads:
        value = getattr(instr, name)
        if isinstance(value, tuple):
            out.extend(value)
        else:
            out.append(value)
    return out


def _flat_writes(instr: isa.Instruction) -> list[str | None]:
    out: list[str | None] = []
    for name in instr.writes:
        value = getattr(instr, name)
        if isinstance(value, tuple):
            out.extend(v.name if isinstance(v, isa.TensorSpec) else v for v in value)
        else:
            out.append(value)
    return out


def compile_steps(section: str, body: Sequence[isa.Instruction], state_slots: dict[str, int],
                  inputs: Sequence[str], outputs: Sequence[str], ctx: KernelContext) -> CompiledSteps:
    """Bind kernels and slots. Ids are assumed structurally valid (`validate_program`)."""
    slots = dict(state_slots)
    for name in inputs:
        slots[name] = len(slots)
    for instr in body:
        for name in _flat_writes(instr):
            if name is not None and name not in slots:
                slots[name] = len(slots)
    keep = set(state_slots) | set(outputs)
    last_use: dict[str, int] = {}
    for index, instr in enumerate(body):
        for name in _flat_reads(instr) + _flat_writes(instr):
            if name is not None:
                last_use[name] = index
    frees_at: dict[int, list[int]] = {}
    for name, index in last_use.items():
        if name not in keep:
            frees_at.setdefault(index, []).append(slots[name])
    steps = []
    for index, instr in enumerate(body):
        label = where(section, index, instr)
        try:
            kernel = make_kernel(instr, ctx)
        except BcaiError as exc:
            raise type(exc)(f"{label}: {exc}") from None
        steps.append(Step(kernel, tuple(None if n is None else slots[n] for n in _flat_reads(instr)),
                          tuple(None if n is None else slots[n] for n in _flat_writes(instr)),
                          tuple(frees_at.get(index, ())), label, instr))
    needs_grad = any(isinstance(i, isa.Backward) for i in body)
    return CompiledSteps(steps, len(slots), tuple(slots[n] for n in inputs), tuple(slots[n] for n in outputs), needs_grad)


def execute(compiled: CompiledSteps, env: list[Any]) -> None:
    """Run the steps over `env` (a list indexed by slot); errors name the instruction."""
    step = None
    try:
        with torch.set_grad_enabled(compiled.needs_grad):
            for step in compiled.steps:
                result = step.kernel(*[None if s is None else env[s] for s in step.reads])
                writes = step.writes
                if len(writes) == 1:
                    env[writes[0]] = result  # type: ignore[index]
                elif writes:
                    for slot, value in zip(writes, result):
                        if slot is not None:
                            env[slot] = value
                for slot in step.frees:
                    env[slot] = None
    except BcaiError as exc:
        raise type(exc)(f"{step.label}: {exc}" if step else str(exc)) from None
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        if step is None:
            raise
        raise _classify(step.label, exc) from None


def _classify(label: str, exc: Exception) -> BcaiError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    dtype_words = ("dtype", "scalar type", "expected type", "Long", "Float", "Half", "Bool", "Int but", "integer")
    cls = DtypeMismatch if any(w in message for w in dtype_words) else ShapeMismatch
    return cls(f"{label}: {message}")


def _nbytes(t: Any) -> int:
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def compute_costs(meta: CompiledSteps, env: list[Any]) -> Costs:
    """Run `meta` (kernels bound to a meta context) on meta tensors in `env`; return costs.

    Raises ShapeMismatch / DtypeMismatch naming the first instruction that does not fit."""
    live = sum(_nbytes(t) for t in env)
    peak = live
    step_gas, step_live = [], []
    flops_total = 0
    try:
        with torch.set_grad_enabled(meta.needs_grad):
            for step in meta.steps:
                ins = [None if s is None else env[s] for s in step.reads]
                result = step.kernel(*ins)
                outs = (result,) if len(step.writes) == 1 else (result or ())
                written = 0
                out_shapes = []
                for slot, value in zip(step.writes, outs):
                    if slot is not None and value is not None:
                        env[slot] = value
                        written += _nbytes(value)
                        out_shapes.append(tuple(value.shape))
                live += written
                peak = max(peak, live)
                in_shapes = [None if t is None else tuple(t.shape) for t in ins]
                flops = gas.compute_flops(step.instr, in_shapes, out_shapes, flops_total)
                flops_total += flops
                moved = 0 if gas.is_view(step.instr) else written
                step_gas.append(gas.compute_gas(flops, moved))
                step_live.append(live)
                for slot in step.frees:
                    live -= _nbytes(env[slot])
                    env[slot] = None
    except BcaiError as exc:
        raise type(exc)(f"{step.label}: {exc}") from None
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as exc:
        raise _classify(step.label, exc) from None
    return Costs(flops_total, sum(step_gas), peak, tuple(step_gas), tuple(step_live))


def check_limits(compiled: CompiledSteps, costs: Costs, max_gas: int, max_memory_bytes: int) -> None:
    """Raise GasExhausted / MemoryLimitExceeded naming the step where the limit is crossed."""
    used = 0
    for step, step_gas, live in zip(compiled.steps, costs.step_gas, costs.step_live_bytes):
        used += step_gas
        if used > max_gas:
            raise GasExhausted(f"{step.label}: gas {used} exceeds the program's limit {max_gas} "
                               f"(the run needs {costs.gas}); nothing was executed")
        if live > max_memory_bytes:
            raise MemoryLimitExceeded(f"{step.label}: live tensors reach {live} bytes, over the program's limit "
                                      f"of {max_memory_bytes} bytes; nothing was executed")


def meta_like(t: torch.Tensor) -> torch.Tensor:
    m = torch.empty(t.shape, dtype=t.dtype, device="meta")
    return m.requires_grad_(True) if t.requires_grad else m


def total_bytes(shape: Sequence[int], dtype: torch.dtype) -> int:
    return math.prod(shape) * torch.empty((), dtype=dtype).element_size()
