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

from bcai.errors import (BcaiError, DtypeMismatch, ExecutionFailed, GasExhausted, MemoryLimitExceeded,
                         ShapeMismatch)
from bcai.vm import gas, isa
from bcai.vm.kernels import Kernel, KernelContext, make_kernel
from bcai.vm.validate import where


@dataclass(frozen=True, slots=True)
class Step:
    kernel: Kernel
    reads: tuple[int | None, ...]
    writes: tuple[int | None, ...]
    frees: tuple[int, ...]
    single: bool  # the kernel returns one tensor (else a tuple, one per write slot)
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
        for written in _flat_writes(instr):
            if written is not None and written not in slots:
                slots[written] = len(slots)
    keep = set(state_slots) | set(outputs)
    last_use: dict[str, int] = {}
    for index, instr in enumerate(body):
        for used in _flat_reads(instr) + _flat_writes(instr):
            if used is not None:
                last_use[used] = index
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
                          tuple(frees_at.get(index, ())),
                          len(instr.writes) == 1 and not isinstance(getattr(instr, instr.writes[0]), tuple),
                          label, instr))
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
                if step.single:
                    env[writes[0]] = result  # type: ignore[index]
                elif writes:
                    for slot, value in zip(writes, result):
                        if slot is not None:
                            env[slot] = value
                for slot in step.frees:
                    env[slot] = None
    except BcaiError as exc:
        raise type(exc)(f"{step.label}: {exc}" if step else str(exc)) from None
    except Exception as exc:  # a kernel failing on real data (planning already checked shapes)
        if step is None:
            raise
        raise ExecutionFailed(f"{step.label}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _classify(label: str, exc: Exception) -> BcaiError:
    message = _first_line(exc)
    dtype_words = ("dtype", "scalar type", "expected type", "Long", "Float", "Half", "Bool", "Int but", "integer")
    cls = DtypeMismatch if any(w in message for w in dtype_words) else ShapeMismatch
    return cls(f"{label}: {message}")


_FLOAT_ONLY = (isa.Linear, isa._ConvBase, isa._PoolBase, isa.BatchNorm, isa.LayerNorm, isa.LSTM, isa.Attention,
               isa.ReLU, isa.GELU, isa.Sigmoid, isa.Tanh, isa.SiLU, isa.Softsign, isa.SELU, isa.LeakyReLU, isa.ELU,
               isa.Softplus, isa.HardSigmoid, isa.Softmax, isa.LogSoftmax, isa.PReLU, isa.MSELoss, isa.Dropout)
_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# TensorOp ops whose operands torch would silently convert or that meta tensors do not check.
_OPERAND_DTYPES: dict[str, tuple[tuple[torch.dtype, ...], str]] = {
    **{op: (_FLOATS, "floats") for op in isa.FLOAT_UNARY_OPS + ("logsumexp",)},
    **{op: ((torch.bool,), "bools") for op in isa.LOGICAL_OPS + ("logical_not",)},
    **{op: (_INT_DTYPES, "integers") for op in isa.BITWISE_OPS + ("bitwise_not",)},
}


def check_dtypes(instr: isa.Instruction, ins: list[Any]) -> None:
    """Dtype rules that meta tensors do not enforce (real kernels would fail mid-run)."""
    def names(ts: list[torch.Tensor]) -> str:
        return ", ".join(str(t.dtype).removeprefix("torch.") for t in ts)

    tensors = [t for t in ins if isinstance(t, torch.Tensor)]
    op = instr.op if isinstance(instr, isa.TensorOp) else None
    if op in _OPERAND_DTYPES:
        allowed, what = _OPERAND_DTYPES[op]
        if not all(t.dtype in allowed for t in tensors) or len({t.dtype for t in tensors}) > 1:
            raise DtypeMismatch(f"TensorOp {op} takes {what} of one dtype, got {names(tensors)}")
    elif op == "gather_elements" and tensors[1].dtype not in _INT_DTYPES:
        raise DtypeMismatch(f"indices must be an integer dtype, got {names(tensors[1:])}")
    elif isinstance(instr, _FLOAT_ONLY) or op == "matmul":
        if not all(t.is_floating_point() for t in tensors) or len({t.dtype for t in tensors}) > 1:
            raise DtypeMismatch(f"inputs must share one floating dtype, got {names(tensors)}")
    elif isinstance(instr, isa.CrossEntropyLoss):
        x, target = ins
        if not x.is_floating_point() or (target.dtype != torch.int64 and target.dtype != x.dtype):
            raise DtypeMismatch(f"logits must be floating and targets int64 (or class probabilities of the "
                                f"logits' dtype), got {names([x, target])}")
    elif isinstance(instr, isa.ScatterElements):
        x, idx, updates = ins
        if idx.dtype not in _INT_DTYPES or updates.dtype != x.dtype:
            raise DtypeMismatch(f"integer indices and updates of the input's dtype, got {names([x, idx, updates])}")
    elif isinstance(instr, (isa.Embedding, isa.Gather)):
        idx, table = (ins[0], ins[1]) if isinstance(instr, isa.Embedding) else (ins[1], ins[0])
        if idx.dtype not in _INT_DTYPES:
            raise DtypeMismatch(f"indices must be an integer dtype, got {names([idx])}")
        if isinstance(instr, isa.Embedding) and not table.is_floating_point():
            raise DtypeMismatch(f"the embedding table must be floating, got {names([table])}")


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
                check_dtypes(step.instr, ins)
                result = step.kernel(*ins)
                outs = (result,) if step.single else (result or ())
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
    except Exception as exc:  # torch and the FLOP formulas raise many kinds on shapes that do not fit
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
