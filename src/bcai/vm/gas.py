"""The gas schedule: what one instruction costs, from its FLOPs and the bytes it writes.

    gas(instruction) = GAS_PER_INSTRUCTION + GAS_PER_FLOP * flops + GAS_PER_BYTE * bytes_written

FLOPs are counted from shapes (multiply and add count as two):

| instruction | FLOPs |
|---|---|
| MatMul / Linear | 2 * out_elements * K (+ out_elements for a bias) |
| ConvND | 2 * out_elements * (C_in / groups) * kernel_volume (+ bias) |
| ConvTransposeND | 2 * in_elements * (C_out / groups) * kernel_volume |
| pooling | out_elements * kernel_volume |
| Sort | input_elements * ceil(log2(axis size)) (at least 1 per element) |
| Einsum | inputs * the product of every index's size (each index once; `...` dims broadcast) |
| LSTM | per step, layer, direction: 2 * 4H * (I + H) * batch + 10 * H * batch |
| Attention | projections 2*B*L*E*(3E) + 2*B*L*E*E, scores and mixing 4*B*L*S*E, softmax 5*B*h*L*S |
| Softmax, LogSoftmax, norms, losses | 5 * input_elements |
| element-wise ops, activations, Dropout, reductions, casts, creation | 1 per element (output; input for reductions) |
| views (reshape, transpose, permute, squeeze, unsqueeze, expand, flatten) | 0, and 0 bytes written |
| Backward | 2 * the FLOPs of the instructions before it in the same entry |
| AdamStep / SGDStep | 12 / 4 per parameter element |
| PythonExecute | 1,000,000 (flat; the sandbox meters its own work) |

`bytes_written` is the size of the tensors an instruction outputs; ToGPU/ToCPU are charged
for the bytes they move. The schedule is a pure function of the instruction and the
shapes, so every node computes the same gas for the same program and feeds.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from bcai.vm import isa

GAS_PER_INSTRUCTION = 1_000
GAS_PER_FLOP = 1
GAS_PER_BYTE = 1

Shape = tuple[int, ...]
VIEW_OPS = ("reshape", "transpose", "permute", "squeeze", "unsqueeze", "expand")


def compute_gas(flops: int, bytes_written: int) -> int:
    return GAS_PER_INSTRUCTION + GAS_PER_FLOP * flops + GAS_PER_BYTE * bytes_written


def is_view(instr: isa.Instruction) -> bool:
    return isinstance(instr, isa.Flatten) or (isinstance(instr, isa.TensorOp) and instr.op in VIEW_OPS)


def compute_einsum_volume(equation: str, shapes: Sequence[Shape]) -> int:
    """The product of the sizes of every index of an einsum (each counted once), times the
    broadcast size of the `...` dims: how many multiply-adds a plain loop nest would do."""
    terms = equation.replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    spans: list[Shape] = []
    for term, shape in zip(terms, shapes):
        letters = term.replace("...", "")
        if "..." in term:
            head, covered = term.index("..."), len(shape) - len(letters)
            spans.append(shape[head:head + covered])
            shape = shape[:head] + shape[head + covered:]
        for letter, size in zip(letters, shape):
            sizes[letter] = max(sizes.get(letter, 1), size)
    width = max((len(span) for span in spans), default=0)
    padded = [(1,) * (width - len(span)) + tuple(span) for span in spans]
    broadcast = [max(dims) for dims in zip(*padded)]  # valid shapes broadcast to the largest size per dim
    return math.prod(broadcast) * math.prod(sizes.values())


def compute_flops(instr: isa.Instruction, ins: Sequence[Shape | None], outs: Sequence[Shape | None],
                  flops_before: int) -> int:
    """FLOPs of one instruction given its input and output shapes (None = absent)."""
    n_out = sum(math.prod(s) for s in outs if s is not None)
    first_in = ins[0] if ins and ins[0] is not None else ()
    n_in = math.prod(first_in)
    if is_view(instr):
        return 0
    if isinstance(instr, isa.TensorOp):
        if instr.op == "matmul":
            return 2 * n_out * (first_in[-1] if first_in else 1)
        if instr.op in isa.REDUCE_OPS:
            return n_in
        return n_out
    if isinstance(instr, isa.Sort):
        n = first_in[instr.axis] if first_in else 1
        return n_in * max(1, math.ceil(math.log2(max(n, 1))))
    if isinstance(instr, isa.Einsum):
        return len(ins) * compute_einsum_volume(instr.equation, [s or () for s in ins])
    if isinstance(instr, isa.Linear):
        k = first_in[-1] if first_in else 1
        return 2 * n_out * k + (n_out if instr.bias is not None else 0)
    if isinstance(instr, isa._ConvBase):
        conv: Any = instr
        weight = ins[1] or ()
        volume = math.prod(weight[2:])
        if type(instr).__name__.startswith("ConvTranspose"):
            return 2 * n_in * weight[1] * volume
        return 2 * n_out * weight[1] * volume + (n_out if conv.bias is not None else 0)
    if isinstance(instr, isa._PoolBase):
        pool: Any = instr
        return n_out * math.prod(pool.kernel)
    if isinstance(instr, isa.LSTM):
        seq, batch = (first_in[1], first_in[0]) if instr.batch_first else (first_in[0], first_in[1])
        h, dirs = instr.hidden_size, 2 if instr.bidirectional else 1
        total = 0
        size_in = first_in[-1]
        for _ in range(instr.num_layers):
            total += dirs * seq * (2 * 4 * h * (size_in + h) * batch + 10 * h * batch)
            size_in = dirs * h
        return total
    if isinstance(instr, isa.Attention):
        b, l, e = first_in
        s = (ins[1] or first_in)[1]
        return 2 * b * l * e * 3 * e + 2 * b * l * e * e + 4 * b * l * s * e + 5 * b * instr.num_heads * l * s
    if isinstance(instr, (isa.Softmax, isa.LogSoftmax, isa.BatchNorm, isa.LayerNorm,
                          isa.CrossEntropyLoss, isa.MSELoss)):
        return 5 * n_in
    if isinstance(instr, isa.Backward):
        return 2 * flops_before
    if isinstance(instr, isa.AdamStep):
        return 12 * sum(math.prod(s) for s in ins[: len(instr.params)] if s is not None)
    if isinstance(instr, isa.SGDStep):
        return 4 * sum(math.prod(s) for s in ins[: len(instr.params)] if s is not None)
    if isinstance(instr, isa.PythonExecute):
        return 1_000_000
    return n_out
