"""Shared helpers for the VM tests: run one instruction in a program, with gradients."""

from __future__ import annotations

from typing import Sequence

import torch

from bcai.vm import VM, Entry, Program, TensorSpec, isa
from bcai.vm.kernels import DTYPE_NAMES, tensor_to_bytes

TOLERANCES = {torch.float32: dict(rtol=2e-5, atol=2e-5), torch.float64: dict(rtol=1e-9, atol=1e-9),
              torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


def state(name: str, t: torch.Tensor, requires_grad: bool = False) -> isa.TensorCreate:
    return isa.TensorCreate(name, tuple(t.shape), DTYPE_NAMES[t.dtype], "data", data=tensor_to_bytes(t),
                            requires_grad=requires_grad)


def run_instruction(instr: isa.Instruction, inputs: dict[str, torch.Tensor], outputs: Sequence[str],
                    grad_wrt: Sequence[str] = (), cotangents: dict[str, torch.Tensor] | None = None,
                    seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], Program]:
    """Run `instr` on state tensors `inputs`; return its outputs and the gradients of
    sum(output * cotangent) with respect to `grad_wrt`."""
    init = [state(n, t, n in grad_wrt) for n, t in inputs.items()]
    body: list[isa.Instruction] = [instr]
    entry_outputs = list(outputs)
    if grad_wrt:
        assert cotangents is not None
        terms = []
        for k, (name, cot) in enumerate(cotangents.items()):
            init.append(state(f"cot.{name}", cot))
            body.append(isa.TensorOp("mul", (name, f"cot.{name}"), f"prod{k}"))
            body.append(isa.TensorOp("sum", (f"prod{k}",), f"term{k}"))
            terms.append(f"term{k}")
        total = terms[0]
        for k, term in enumerate(terms[1:]):
            body.append(isa.TensorOp("add", (total, term), f"acc{k}"))
            total = f"acc{k}"
        grads = tuple(f"grad.{n}" for n in grad_wrt)
        body.append(isa.Backward(total, tuple(grad_wrt), grads))
        entry_outputs += list(grads)
    program = Program(init=tuple(init), entries=(Entry("main", (), tuple(body), tuple(entry_outputs)),),
                      seed=seed)
    out, _ = VM("cpu").run(program, {})
    return ({n: out[n] for n in outputs}, {n: out[f"grad.{n}"] for n in grad_wrt}, program)


def reference_grads(outputs: dict[str, torch.Tensor], cotangents: dict[str, torch.Tensor],
                    wrt: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    total = sum((outputs[n] * c).sum() for n, c in cotangents.items())
    grads = torch.autograd.grad(total, list(wrt.values()), allow_unused=True)
    return {n: torch.zeros_like(w) if g is None else g for (n, w), g in zip(wrt.items(), grads)}


def feed_program(body: Sequence[isa.Instruction], inputs: Sequence[TensorSpec], outputs: Sequence[str],
                 init: Sequence[isa.Instruction] = (), **kwargs: object) -> Program:
    return Program(init=tuple(init), entries=(Entry("main", tuple(inputs), tuple(body), tuple(outputs)),),
                   **kwargs)  # type: ignore[arg-type]
