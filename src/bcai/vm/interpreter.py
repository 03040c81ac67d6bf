"""The interpreter: `VM` (a configured executor) and `Session` (a loaded program).

    vm = VM(device="auto", deterministic=True)
    outputs, metrics = vm.run(program, {"x": batch})          # one-shot: load + one entry

    session = vm.load(program)                                 # validate, plan, run init
    for xb, yb in batches:
        out, m = session.run("train_step", {"x": xb, "y": yb})
    weights = session.get_parameters()                         # {id: CPU tensor}
    session.set_parameters(averaged)                           # e.g. after FedAvg
    cid = session.compute_model_hash()                         # parameters + buffers

Loading validates the structure (`validate.py`), plans every entry on meta tensors with
its declared input shapes (dynamic dims = 2) so shape and dtype errors surface before
anything runs, then executes `init`. Each run checks the feeds against the entry's
inputs, costs the run for that shape signature (cached) and refuses it with
`GasExhausted` / `MemoryLimitExceeded` before executing a single instruction if it would
cross the program's limits.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Protocol

import torch

from bcai.crypto import Cid
from bcai.errors import DeviceUnavailable, InvalidFeed
from bcai.vm import isa
from bcai.vm.backends import Backend, select_backend
from bcai.vm.kernels import DTYPE_NAMES, TORCH_DTYPES, KernelContext
from bcai.vm.plan import CompiledSteps, Costs, check_limits, compile_steps, compute_costs, execute, meta_like
from bcai.vm.program import Entry, Program, compute_program_cid
from bcai.vm.tensors import TensorManager, as_tensor, compute_tensors_hash, decode_tensors, encode_tensors
from bcai.vm.validate import validate_program

_DYNAMIC_DIM_FOR_PLANNING = 2
_DROPOUT_SEED_OFFSET = 0x5EED
_MAX_CACHED_SHAPES = 32


class PythonBridge(Protocol):
    """What `PythonExecute` calls (implemented by `bcai.sandbox.python` once wired)."""

    def execute(self, code: str, inputs: dict[str, Any], constraints: isa.PythonConstraints) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Metrics:
    """What one or more runs did. Add metrics to accumulate (peak is the maximum)."""

    instructions: int = 0
    flops: int = 0
    gas: int = 0
    peak_tensor_bytes: int = 0
    wall_time_ns: int = 0

    def __add__(self, other: Metrics) -> Metrics:
        return Metrics(self.instructions + other.instructions, self.flops + other.flops, self.gas + other.gas,
                       max(self.peak_tensor_bytes, other.peak_tensor_bytes), self.wall_time_ns + other.wall_time_ns)

    @property
    def wall_time_s(self) -> float:
        return self.wall_time_ns / 1e9

    def to_dict(self) -> dict[str, int]:
        return {"instructions": self.instructions, "flops": self.flops, "gas": self.gas,
                "peak_tensor_bytes": self.peak_tensor_bytes, "wall_time_ns": self.wall_time_ns}


@contextmanager
def deterministic_mode(threads: int) -> Iterator[None]:
    """Deterministic algorithms, a fixed thread count, no cuDNN autotuning; restored on exit."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0])
        torch.set_num_threads(saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class VM:
    """Executes programs on one backend.

    `device`: "auto" (the first of the program's requirements this node has), "cpu",
    "cuda", "mps" or "wgpu" (always unavailable). `deterministic`: fixed seeds,
    deterministic algorithms and `threads` threads (default 1), so that two runs of the
    same program on the same feeds give bitwise identical outputs and state.
    `python_bridge`: the sandbox `PythonExecute` runs in (None: it raises
    `PythonBridgeUnavailable`)."""

    def __init__(self, device: str = "auto", *, deterministic: bool = False, threads: int | None = None,
                 python_bridge: PythonBridge | None = None) -> None:
        self.device = device
        self.deterministic = deterministic
        self.threads = threads if threads is not None else (1 if deterministic else torch.get_num_threads())
        self.python_bridge = python_bridge
        if device != "auto":
            select_backend(device, (device,))  # fail early for an absent device

    def mode(self) -> Any:
        return deterministic_mode(self.threads) if self.deterministic else _nothing()

    def load(self, program: Program) -> Session:
        """Validate and plan `program`, run its init, and return the loaded session."""
        return Session(self, program)

    def run(self, program: Program, feeds: Mapping[str, Any], entry: str | None = None) -> tuple[dict[str, torch.Tensor], Metrics]:
        """Load `program` and run one entry (default: its only entry, or `forward`)."""
        session = self.load(program)
        if entry is None:
            entry = program.entries[0].name if len(program.entries) == 1 else "forward"
        outputs, metrics = session.run(entry, feeds)
        return outputs, session.init_metrics + metrics


class Session:
    """A program loaded on a backend: its state tensors and its planned entries."""

    def __init__(self, vm: VM, program: Program) -> None:
        self.vm = vm
        self.program = program
        self.cid: Cid = compute_program_cid(program)
        state_ids = validate_program(program)
        self.backend: Backend = select_backend(vm.device, program.requirements)
        if any(isinstance(i, isa.ToGPU) for e in program.entries for i in e.body) and not self.backend.accelerator:
            raise DeviceUnavailable(f"the program moves tensors to a GPU (ToGPU) but runs on the "
                                    f"{self.backend.name} backend")
        device = self.backend.device
        with vm.mode():
            self.backend.seed_all(program.seed)
            init_gen = torch.Generator().manual_seed(program.seed)
            self.ctx = KernelContext(device, init_gen, self.backend.make_generator(program.seed + _DROPOUT_SEED_OFFSET),
                                     self.backend.accelerator_device, vm.python_bridge)
            self._meta_ctx = KernelContext(torch.device("meta"), None, None, self.backend.accelerator_device,
                                           None, meta=True)
            init = compile_steps("init", program.init, {}, (), state_ids, self.ctx)
            init_meta = compile_steps("init", program.init, {}, (), state_ids, self._meta_ctx)
            meta_env: list[Any] = [None] * init_meta.n_slots
            init_costs = compute_costs(init_meta, meta_env)
            check_limits(init_meta, init_costs, program.limits.max_gas, program.limits.max_memory_bytes)
            state_slots = {name: i for i, name in enumerate(state_ids)}
            self._entries: dict[str, tuple[Entry, CompiledSteps, CompiledSteps]] = {}
            meta_state = meta_env[:len(state_ids)]
            for entry in program.entries:
                names = [s.name for s in entry.inputs]
                real = compile_steps(f"entry {entry.name!r}", entry.body, state_slots, names, entry.outputs, self.ctx)
                meta = compile_steps(f"entry {entry.name!r}", entry.body, state_slots, names, entry.outputs,
                                     self._meta_ctx)
                self._entries[entry.name] = (entry, real, meta)
                shapes = tuple(tuple(_DYNAMIC_DIM_FOR_PLANNING if d == -1 else d for d in s.shape) for s in entry.inputs)
                self._costs_for(entry, meta, shapes, meta_state)
            start = time.perf_counter_ns()
            env: list[Any] = [None] * init.n_slots
            execute(init, env)
            self.backend.synchronize()
            wall = time.perf_counter_ns() - start
        self.state = TensorManager(state_ids, env[:len(state_ids)], device)
        self.init_metrics = Metrics(len(program.init), init_costs.flops, init_costs.gas, init_costs.peak_bytes, wall)

    # --- running -------------------------------------------------------------------------

    def _costs_for(self, entry: Entry, meta: CompiledSteps, shapes: tuple[tuple[int, ...], ...],
                   meta_state: list[torch.Tensor] | None = None) -> Costs:
        costs = meta.costs.get(shapes)
        if costs is None:
            if meta_state is None:
                meta_state = [meta_like(t) for t in self.state.tensors]
            env: list[Any] = [None] * meta.n_slots
            env[:len(meta_state)] = meta_state
            for slot, spec, shape in zip(meta.input_slots, entry.inputs, shapes):
                env[slot] = torch.empty(shape, dtype=TORCH_DTYPES[spec.dtype], device="meta")
            costs = compute_costs(meta, env)
            if len(meta.costs) >= _MAX_CACHED_SHAPES:
                meta.costs.pop(next(iter(meta.costs)))
            meta.costs[shapes] = costs
        return costs

    def run(self, entry: str, feeds: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], Metrics]:
        """Run entry `entry` with `feeds` ({input name: tensor or numpy array}); return its
        outputs (detached tensors on the backend's device) and metrics."""
        if entry not in self._entries:
            raise InvalidFeed(f"the program has no entry {entry!r} (entries: {list(self._entries)})")
        spec, real, meta = self._entries[entry]
        tensors = _check_feeds(spec, feeds)
        shapes = tuple(tuple(t.shape) for t in tensors)
        limits = self.program.limits
        with self.vm.mode():
            costs = self._costs_for(spec, meta, shapes)
            check_limits(meta, costs, limits.max_gas, limits.max_memory_bytes)
            start = time.perf_counter_ns()
            env: list[Any] = [None] * real.n_slots
            env[:len(self.state.tensors)] = self.state.tensors
            device = self.backend.device
            for slot, t in zip(real.input_slots, tensors):
                env[slot] = t.to(device)
            execute(real, env)
            self.backend.synchronize()
            wall = time.perf_counter_ns() - start
        outputs = {name: env[slot].detach() for name, slot in zip(spec.outputs, real.output_slots)}
        return outputs, Metrics(len(real.steps), costs.flops, costs.gas, costs.peak_bytes, wall)

    # --- state for the runner ------------------------------------------------------------

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self.program.parameters + self.program.buffers

    def get_parameters(self) -> dict[str, torch.Tensor]:
        """The model's parameters and buffers (CPU copies), by id."""
        return self.state.get(self.model_ids)

    def set_parameters(self, values: Mapping[str, Any]) -> None:
        """Overwrite some or all parameters/buffers (same shapes and dtypes), in place."""
        self.state.set(values, self.model_ids)

    def get_state(self) -> dict[str, torch.Tensor]:
        """All state, optimizer moments and step counters included (for checkpoints)."""
        return self.state.get(self.state.ids)

    def set_state(self, values: Mapping[str, Any]) -> None:
        self.state.set(values, self.state.ids)

    def export_state(self) -> bytes:
        """Canonical bytes of all state (a checkpoint)."""
        return encode_tensors(self.get_state())

    def import_state(self, data: bytes) -> None:
        """Restore a checkpoint made by `export_state` (every state id must be present)."""
        values = decode_tensors(data)
        missing = set(self.state.ids) - set(values)
        if missing:
            raise InvalidFeed(f"checkpoint lacks state ids {sorted(missing)}")
        self.set_state(values)

    def compute_model_hash(self) -> Cid:
        """Content id of the canonical bytes of the parameters and buffers."""
        return compute_tensors_hash(self.get_parameters())

    def compute_state_hash(self) -> Cid:
        """Content id of the canonical bytes of all state."""
        return compute_tensors_hash(self.get_state())


def _check_feeds(entry: Entry, feeds: Mapping[str, Any]) -> list[torch.Tensor]:
    names = [s.name for s in entry.inputs]
    missing = [n for n in names if n not in feeds]
    extra = [n for n in feeds if n not in names]
    if missing or extra:
        raise InvalidFeed(f"entry {entry.name!r} takes inputs {names}; missing {missing}, unexpected {extra}")
    out = []
    for spec in entry.inputs:
        t = as_tensor(feeds[spec.name])
        dtype = DTYPE_NAMES.get(t.dtype)
        if dtype != spec.dtype:
            raise InvalidFeed(f"input {spec.name!r} must be {spec.dtype}, got {dtype or t.dtype}")
        if t.dim() != len(spec.shape) or any(d not in (-1, s) for d, s in zip(spec.shape, t.shape)):
            raise InvalidFeed(f"input {spec.name!r} must have shape {list(spec.shape)} (-1: any), got {list(t.shape)}")
        out.append(t)
    return out
