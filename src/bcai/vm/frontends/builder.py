"""Building programs: a small builder the front ends share, and the training program shape.

`ProgramBuilder` collects state (`param`, `buffer`: TensorCreate in init, created once per
name so a model function can be traced twice, for train and eval mode) and entry bodies
(`emit`, `fresh` ids).

`build_training_program(model, ...)` is the one place that decides what a training
program looks like, for BML and for `compile_torch(..., training=...)`:

- init: the model's parameters and buffers, then the optimizer state
  (`opt.<param>.exp_avg`, `.exp_avg_sq`, `.step` for Adam; `.momentum` for SGD);
- `forward(x) -> logits` in eval mode;
- `train_step(x, y) -> loss`: forward in training mode, loss, `Backward` over every
  parameter, the optimizer step (one batch);
- `evaluate(x, y) -> loss_sum, correct` in eval mode (sum of per-example losses, and the
  number of correct argmax predictions for cross-entropy; MSE gives `loss_sum` only);
- `compute_gradients(x, y) -> loss, grad.<param>...`: `train_step` split before the
  optimizer step (forward in training mode, loss, `Backward`; buffers such as batch-norm
  statistics update as in `train_step`), returning the mean-loss gradients;
- `apply_gradients(grad.<param>...)`: the optimizer step alone on given gradients.
  `compute_gradients` then `apply_gradients` on its outputs is bitwise `train_step`; in
  between, data-parallel training all-reduces the gradients across workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

from bcai.errors import InvalidProgram
from bcai.vm import isa
from bcai.vm.program import Entry, Limits, Program, TrainingPlan


@dataclass
class ProgramBuilder:
    init: list[isa.Instruction] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    buffers: list[str] = field(default_factory=list)
    body: list[isa.Instruction] = field(default_factory=list)
    _shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _counter: int = 0

    def _state(self, name: str, shape: tuple[int, ...], kind: list[str], requires_grad: bool, init: str,
               a: float | str = 0.0, b: float | str = 1.0, data: bytes | None = None, dtype: str = "float32") -> str:
        if name in self._shapes:
            if self._shapes[name] != tuple(shape):
                raise InvalidProgram(f"state {name!r} declared twice with shapes {self._shapes[name]} and {shape}")
            return name
        self._shapes[name] = tuple(shape)
        self.init.append(isa.TensorCreate(name, tuple(shape), dtype, init, a, b, data, requires_grad))
        kind.append(name)
        return name

    def param(self, name: str, shape: tuple[int, ...], init: str = "zeros", a: float | str = 0.0,
              b: float | str = 1.0, data: bytes | None = None, dtype: str = "float32") -> str:
        """A trainable parameter (created once; later calls with the same name reuse it)."""
        return self._state(name, shape, self.parameters, True, init, a, b, data, dtype)

    def uniform_param(self, name: str, shape: tuple[int, ...], bound: float) -> str:
        return self.param(name, shape, "uniform", -bound, bound)

    def buffer(self, name: str, shape: tuple[int, ...], init: str = "zeros", data: bytes | None = None,
               dtype: str = "float32") -> str:
        """A non-trainable model tensor (batch-norm running statistics)."""
        return self._state(name, shape, self.buffers, False, init, data=data, dtype=dtype)

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def emit(self, instr: isa.Instruction) -> None:
        self.body.append(instr)

    def name_output(self, current: str, wanted: str) -> str:
        """Give the body's final result a readable id (`logits`, `y`) when the last
        instruction is the one writing it; otherwise keep `current`."""
        last = self.body[-1] if self.body else None
        if last is None or getattr(last, "output", None) != current or wanted in self._shapes:
            return current
        self.body[-1] = replace(last, output=wanted)  # type: ignore[type-var]
        return wanted

    def take_body(self) -> tuple[isa.Instruction, ...]:
        body, self.body = tuple(self.body), []
        return body


ModelFn = Callable[[ProgramBuilder, str, bool], str]
"""(builder, input id, training) -> output id; emits the forward pass into `builder.body`."""


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float | str = 0.001
    momentum: float | str = 0.0
    weight_decay: float | str = 0.0
    beta1: float | str = 0.9
    beta2: float | str = 0.999
    eps: float | str = 1e-8
    nesterov: bool = False


def linear_bound(fan_in: int) -> float:
    """torch's default bound for Linear/Conv weights and biases: 1/sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def build_training_program(model: ModelFn, input_spec: isa.TensorSpec, *, num_outputs: int, loss: str,
                           optimizer: OptimizerConfig, seed: int, limits: Limits | None = None,
                           epochs: int = 1, batch_size: int = 32, dataset: str | None = None,
                           requirements: tuple[str, ...] = ("cuda", "mps", "cpu"),
                           builder: ProgramBuilder | None = None) -> Program:
    """Assemble forward / train_step / evaluate entries around `model` (see module doc)."""
    if loss not in ("cross_entropy", "mse"):
        raise InvalidProgram(f"unknown loss {loss!r} (known: cross_entropy, mse)")
    b = builder or ProgramBuilder()
    x = input_spec.name
    label = isa.TensorSpec("y", (-1,), "int64") if loss == "cross_entropy" else isa.TensorSpec("y", (-1, num_outputs))

    logits = b.name_output(model(b, x, False), "logits")
    forward = Entry("forward", (input_spec,), b.take_body(), (logits,))

    out = model(b, x, True)
    params = tuple(b.parameters)
    if loss == "cross_entropy":
        b.emit(isa.CrossEntropyLoss(out, "y", "loss"))
    else:
        b.emit(isa.MSELoss(out, "y", "loss"))
    grads = tuple(f"grad.{p}" for p in params)
    b.emit(isa.Backward("loss", params, grads))
    b.emit(_optimizer_step(b, params, grads, optimizer))
    train = Entry("train_step", (input_spec, label), b.take_body(), ("loss",))

    out = model(b, x, False)
    if loss == "cross_entropy":
        b.emit(isa.CrossEntropyLoss(out, "y", "loss_sum", reduction="sum"))
        b.emit(isa.TensorOp("argmax", (out,), "pred", dims=(1,)))
        b.emit(isa.TensorOp("eq", ("pred", "y"), "hits"))
        b.emit(isa.Cast("hits", "hits_i", "int64"))
        b.emit(isa.TensorOp("sum", ("hits_i",), "correct"))
        eval_outputs: tuple[str, ...] = ("loss_sum", "correct")
    else:
        b.emit(isa.MSELoss(out, "y", "loss_sum", reduction="sum"))
        eval_outputs = ("loss_sum",)
    evaluate = Entry("evaluate", (input_spec, label), b.take_body(), eval_outputs)

    out = model(b, x, True)
    if loss == "cross_entropy":
        b.emit(isa.CrossEntropyLoss(out, "y", "loss"))
    else:
        b.emit(isa.MSELoss(out, "y", "loss"))
    b.emit(isa.Backward("loss", params, grads))
    compute_gradients = Entry("compute_gradients", (input_spec, label), b.take_body(), ("loss", *grads))

    dtypes = {i.id: i.dtype for i in b.init if isinstance(i, isa.TensorCreate)}
    grad_specs = tuple(isa.TensorSpec(g, b._shapes[p], dtypes[p]) for p, g in zip(params, grads))
    b.emit(_optimizer_step(b, params, grads, optimizer))
    apply_gradients = Entry("apply_gradients", grad_specs, b.take_body(), ())

    return Program(init=tuple(b.init), entries=(forward, train, evaluate, compute_gradients, apply_gradients),
                   parameters=params,
                   buffers=tuple(b.buffers), limits=limits or Limits(), requirements=requirements, seed=seed,
                   training=TrainingPlan(epochs, batch_size, dataset, feature_input=x))


def _optimizer_step(b: ProgramBuilder, params: tuple[str, ...], grads: tuple[str, ...],
                    opt: OptimizerConfig) -> isa.Instruction:
    shapes = [b._shapes[p] for p in params]
    if opt.name in ("adam", "adamw"):
        m = tuple(b._state(f"opt.{p}.exp_avg", s, [], False, "zeros") for p, s in zip(params, shapes))
        v = tuple(b._state(f"opt.{p}.exp_avg_sq", s, [], False, "zeros") for p, s in zip(params, shapes))
        steps = tuple(b._state(f"opt.{p}.step", (), [], False, "zeros") for p in params)
        return isa.AdamStep(params, grads, m, v, steps, lr=opt.lr, beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps,
                            weight_decay=opt.weight_decay, decoupled=opt.name == "adamw")
    if opt.name == "sgd":
        momentum = float(opt.momentum)
        bufs = tuple(b._state(f"opt.{p}.momentum", s, [], False, "zeros") for p, s in zip(params, shapes)) \
            if momentum > 0 else ()
        return isa.SGDStep(params, grads, lr=opt.lr, momentum_buffers=bufs, momentum=opt.momentum,
                           weight_decay=opt.weight_decay, nesterov=opt.nesterov)
    raise InvalidProgram(f"unknown optimizer {opt.name!r} (known: adam, adamw, sgd)")
