"""The ML instruction set: one frozen dataclass per instruction.

Every instruction names its tensors by string id. Instructions are functional over ids
(weights are tensors made by `TensorCreate`, not hidden inside layers), so a program is a
plain list that any node can validate, meter and replay. Field kinds (`Id`, `Dec`,
`Ints`...) are the schema of `records.py`; which fields an instruction reads and writes is
declared in `reads` / `writes`, and the validator and the tensor manager use only those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform

from bcai.errors import MalformedProgram, UnknownInstruction
from bcai.vm.records import (DTYPES, Bool, Constraints, Dec, Dtype, Id, Ids, Int, Ints, OptBytes,
                             OptDec, OptId, OptInt, PythonConstraints, Specs, Str, TensorSpec,
                             _Record, canonical_dec)


class Instruction(_Record):
    """Base of every instruction. `reads`/`writes` name the fields holding tensor ids."""

    reads: ClassVar[tuple[str, ...]] = ("input",)
    writes: ClassVar[tuple[str, ...]] = ("output",)

    def read_ids(self) -> tuple[str, ...]:
        return _collect(self, self.reads)

    def write_ids(self) -> tuple[str, ...]:
        return _collect(self, self.writes)

    def to_obj(self) -> dict[str, Any]:
        obj = _Record.to_obj(self)
        obj["op_kind"] = self.KIND
        return obj


def _collect(instr: Instruction, names: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        value = getattr(instr, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            out.extend(v.name if isinstance(v, TensorSpec) else v for v in value)
        else:
            out.append(value)
    return tuple(out)


INSTRUCTIONS: dict[str, type[Instruction]] = {}


def _register(cls: Any) -> Any:
    cls.KIND = cls.__name__
    INSTRUCTIONS[cls.__name__] = cls
    return cls


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def instruction(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen dataclass and register it under its class name."""
    return _register(dataclass(frozen=True, slots=True)(cls))


def instruction_from_obj(obj: Any) -> Instruction:
    """Decode one instruction from its canonical object (`{"op_kind": KIND, ...}`)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("op_kind"), str):
        raise MalformedProgram("an instruction must be a map with a string 'op_kind'")
    cls = INSTRUCTIONS.get(obj["op_kind"])
    if cls is None:
        raise UnknownInstruction(f"unknown instruction kind {obj['op_kind']!r}")
    return cls.from_obj(obj)


# --- tensors and devices ----------------------------------------------------------------

INITS = ("zeros", "ones", "full", "uniform", "normal", "data")


@instruction
class TensorCreate(Instruction):
    """Create tensor `id`: zeros, ones, full(a), uniform(a, b), normal(mean a, std b) drawn
    from the program's seeded generator, or `data` (raw little-endian bytes)."""

    id: Id
    shape: Ints
    dtype: Dtype = "float32"
    init: Str = "zeros"
    a: Dec = 0.0
    b: Dec = 1.0
    data: OptBytes = None
    requires_grad: Bool = False
    reads = ()
    writes = ("id",)

    def __post_init__(self) -> None:
        Instruction.__post_init__(self)
        if self.init not in INITS:
            raise MalformedProgram(f"TensorCreate {self.id}: unknown init {self.init!r} (known: {', '.join(INITS)})")
        if any(d < 0 for d in self.shape):
            raise MalformedProgram(f"TensorCreate {self.id}: negative dimension in {self.shape}")
        if (self.init == "data") != (self.data is not None):
            raise MalformedProgram(f"TensorCreate {self.id}: init 'data' and a data field go together")


@instruction
class Cast(Instruction):
    """Convert `input` to `dtype`."""

    input: Id
    output: Id
    dtype: Dtype


@instruction
class ToGPU(Instruction):
    """Move `input` to the node's accelerator (CUDA or MPS)."""

    input: Id
    output: Id


@instruction
class ToCPU(Instruction):
    """Move `input` to host memory."""

    input: Id
    output: Id


# --- generic tensor ops ------------------------------------------------------------------

FLOAT_UNARY_OPS = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh")
UNARY_OPS = ("neg", "exp", "log", "sqrt", "abs", "erf", "reciprocal", "sign", "floor", "ceil", "round", "isnan",
             "isinf", "logical_not", "bitwise_not") + FLOAT_UNARY_OPS
LOGICAL_OPS = ("logical_and", "logical_or", "logical_xor")
BITWISE_OPS = ("bitwise_and", "bitwise_or", "bitwise_xor", "shift_left", "shift_right")
BINARY_OPS = ("add", "sub", "mul", "div", "div_trunc", "pow", "maximum", "minimum", "eq", "lt", "gt", "le", "ge",
              "mod", "fmod") + LOGICAL_OPS + BITWISE_OPS
SHAPE_OPS = ("reshape", "transpose", "permute", "squeeze", "unsqueeze", "expand")
REDUCE_OPS = ("sum", "mean", "max", "min", "prod", "argmax", "argmin", "logsumexp")
TENSOR_OPS = UNARY_OPS + BINARY_OPS + SHAPE_OPS + REDUCE_OPS + ("matmul", "concat", "where", "cumsum", "cumprod",
                                                                 "triu", "tril", "gather_elements")


@instruction
class TensorOp(Instruction):
    """A generic op on `inputs` (see TENSOR_OPS). `dims` is the new shape (reshape: -1 is
    inferred and 0 copies the input's size at that index, as in ONNX; expand),
    the two swapped axes (transpose), the permutation (permute), the axes (squeeze,
    unsqueeze, reductions; empty = all: for squeeze every size-1 dim), `(axis,)` (concat,
    cumsum, cumprod, gather_elements) or `(k,)`, the diagonal offset (triu, tril). A binary op with one input
    uses the scalar `value` as its second operand. `div` is true division (torch `/`), `div_trunc`
    rounds the quotient toward zero (ONNX Div on integers); `mod` takes the divisor's sign
    (Python `%`), `fmod` the dividend's (C fmod). `round` rounds half to even. Logical ops take
    bool, bitwise and shift ops integers; the trigonometric and hyperbolic ops take floats.
    `expand` broadcasts to `dims` by numpy rules; `where` selects between inputs 2 and 3 by the
    condition in input 1; `gather_elements` takes input 1 at the indices of input 2 along the
    axis (ONNX GatherElements, negative indices count from the end)."""

    op: Str
    inputs: Ids
    output: Id
    dims: Ints = ()
    keepdim: Bool = False
    value: OptDec = None
    reads = ("inputs",)

    def __post_init__(self) -> None:
        Instruction.__post_init__(self)
        if self.op not in TENSOR_OPS:
            raise UnknownInstruction(f"unknown TensorOp op {self.op!r}")
        if self.op in BINARY_OPS:
            arity: tuple[int, ...] = (1,) if self.value is not None else (2,)
        else:
            arity = {"matmul": (2,), "where": (3,), "gather_elements": (2,)}.get(self.op, (1,))
        if self.op in ("cumsum", "cumprod", "triu", "tril", "gather_elements") and len(self.dims) != 1:
            raise MalformedProgram(f"TensorOp {self.op}: needs dims=(axis,) or (k,)")
        if self.op == "concat":
            if len(self.inputs) < 1 or len(self.dims) != 1:
                raise MalformedProgram("TensorOp concat: needs >= 1 input and dims=(axis,)")
        elif len(self.inputs) not in arity:
            raise MalformedProgram(f"TensorOp {self.op}: expected {arity[0]} input(s), got {len(self.inputs)}")


@instruction
class Sort(Instruction):
    """Stable sort of `input` along `axis`: the sorted `values` and their int64 `indices` in
    the input (equal elements keep their order, so the lower index comes first; NaN sorts as
    the largest)."""

    input: Id
    values: Id
    indices: Id
    axis: Int = -1
    descending: Bool = False
    writes = ("values", "indices")


SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")


@instruction
class ScatterElements(Instruction):
    """A copy of `input` with `updates` written at `indices` along `axis` (ONNX
    ScatterElements; negative indices count from the end); `reduction` combines each update
    with the value there (add, mul, max, min) instead of replacing it. Two updates of one
    position without a reduction are refused at run time (ONNX leaves them undefined)."""

    input: Id
    indices: Id
    updates: Id
    output: Id
    axis: Int = 0
    reduction: Str = "none"
    reads = ("input", "indices", "updates")

    def __post_init__(self) -> None:
        Instruction.__post_init__(self)
        if self.reduction not in SCATTER_REDUCTIONS:
            raise MalformedProgram(f"ScatterElements: unknown reduction {self.reduction!r}")


@instruction
class Einsum(Instruction):
    """Einstein summation of `inputs` by `equation` (numpy/torch einsum notation)."""

    inputs: Ids
    output: Id
    equation: Str
    reads = ("inputs",)


@instruction
class Split(Instruction):
    """Split `input` along `axis` into pieces of `sizes` (one per output)."""

    input: Id
    outputs: Ids
    axis: Int
    sizes: Ints
    writes = ("outputs",)


@instruction
class Slice(Instruction):
    """`input[starts:ends:steps]` along `axes` (ONNX Slice semantics, clamped ends)."""

    input: Id
    output: Id
    axes: Ints
    starts: Ints
    ends: Ints
    steps: Ints = ()


@instruction
class Gather(Instruction):
    """Take entries of `input` along `axis` at integer `indices` (ONNX Gather)."""

    input: Id
    indices: Id
    output: Id
    axis: Int = 0
    reads = ("input", "indices")


@instruction
class Pad(Instruction):
    """Pad `input`; `pads` is in torch order (last dim first: left, right, ...)."""

    input: Id
    output: Id
    pads: Ints
    mode: Str = "constant"
    value: Dec = 0.0


@instruction
class Clamp(Instruction):
    """Clamp `input` to [min, max] (either may be None)."""

    input: Id
    output: Id
    min: OptDec = None
    max: OptDec = None


@instruction
class Flatten(Instruction):
    """Flatten dims `start_dim..end_dim` of `input` into one."""

    input: Id
    output: Id
    start_dim: Int = 1
    end_dim: Int = -1


# --- layers ------------------------------------------------------------------------------


@instruction
class Linear(Instruction):
    """`input @ weight.T + bias` (torch.nn.functional.linear)."""

    input: Id
    weight: Id
    bias: OptId
    output: Id
    reads = ("input", "weight", "bias")


class _ConvBase(Instruction):
    ND: ClassVar[int] = 2
    reads = ("input", "weight", "bias")


def _conv(nd: int, transpose: bool) -> type[Instruction]:
    name = f"Conv{'Transpose' if transpose else ''}{nd}D"
    namespace: dict[str, Any] = {
        "__annotations__": {
            "input": "Id", "weight": "Id", "bias": "OptId", "output": "Id",
            "stride": "Ints", "padding": "Ints", "dilation": "Ints", "groups": "Int",
            **({"output_padding": "Ints"} if transpose else {}),
        },
        "stride": (1,) * nd, "padding": (0,) * nd, "dilation": (1,) * nd, "groups": 1,
        **({"output_padding": (0,) * nd} if transpose else {}),
        "ND": nd,
        "__doc__": f"{'Transposed ' if transpose else ''}{nd}-d convolution (torch.nn.functional."
                   f"conv{'_transpose' if transpose else ''}{nd}d); stride/padding/dilation per spatial dim.",
        "__module__": __name__,
        "__qualname__": name,
    }
    return instruction(type(name, (_ConvBase,), namespace))


Conv1D: Any = _conv(1, False)
Conv2D: Any = _conv(2, False)
Conv3D: Any = _conv(3, False)
ConvTranspose1D: Any = _conv(1, True)
ConvTranspose2D: Any = _conv(2, True)
ConvTranspose3D: Any = _conv(3, True)


class _PoolBase(Instruction):
    ND: ClassVar[int] = 2


def _pool(nd: int, kind: str) -> type[Instruction]:
    name = f"{kind}Pool{nd}D"
    ann = {"input": "Id", "output": "Id", "kernel": "Ints", "stride": "Ints", "padding": "Ints",
           "ceil_mode": "Bool"}
    defaults: dict[str, Any] = {"stride": (), "padding": (0,) * nd, "ceil_mode": False}
    if kind == "Max":
        ann["dilation"] = "Ints"
        defaults["dilation"] = (1,) * nd
    else:
        ann["count_include_pad"] = "Bool"
        defaults["count_include_pad"] = True
    namespace: dict[str, Any] = {
        "__annotations__": ann, **defaults, "ND": nd,
        "__doc__": f"{nd}-d {kind.lower()} pooling (torch.nn.functional.{kind.lower()}_pool{nd}d); "
                   "empty stride means stride = kernel.",
        "__module__": __name__, "__qualname__": name,
    }
    return instruction(type(name, (_PoolBase,), namespace))


MaxPool1D: Any = _pool(1, "Max")
MaxPool2D: Any = _pool(2, "Max")
MaxPool3D: Any = _pool(3, "Max")
AvgPool1D: Any = _pool(1, "Avg")
AvgPool2D: Any = _pool(2, "Avg")
AvgPool3D: Any = _pool(3, "Avg")


@instruction
class BatchNorm(Instruction):
    """Batch normalization over dim 1. With `training`, batch statistics are used and the
    running statistics are updated in place (momentum); otherwise running statistics."""

    input: Id
    weight: OptId
    bias: OptId
    running_mean: OptId
    running_var: OptId
    output: Id
    training: Bool = False
    momentum: Dec = 0.1
    eps: Dec = 1e-5
    reads = ("input", "weight", "bias", "running_mean", "running_var")


@instruction
class LayerNorm(Instruction):
    """Layer normalization over the last `normalized_ndim` dims."""

    input: Id
    weight: OptId
    bias: OptId
    output: Id
    normalized_ndim: Int = 1
    eps: Dec = 1e-5
    reads = ("input", "weight", "bias")


@instruction
class Dropout(Instruction):
    """Zero entries with probability `p` (scaling the rest by 1/(1-p)) using the program's
    seeded dropout generator; the identity when `training` is False."""

    input: Id
    output: Id
    p: Dec = 0.5
    training: Bool = True


@instruction
class Embedding(Instruction):
    """Rows of `weight` at integer `indices`."""

    indices: Id
    weight: Id
    output: Id
    padding_idx: OptInt = None
    reads = ("indices", "weight")


@instruction
class LSTM(Instruction):
    """A (multi-layer, optionally bidirectional) LSTM with torch.nn.LSTM's gate order
    (i, f, g, o). `weights` lists per layer and direction w_ih, w_hh[, b_ih, b_hh], in
    torch.nn.LSTM's `_flat_weights` order. Outputs the sequence, and optionally h_n, c_n."""

    input: Id
    weights: Ids
    output: Id
    hidden_size: Int
    num_layers: Int = 1
    bidirectional: Bool = False
    batch_first: Bool = True
    has_bias: Bool = True
    h0: OptId = None
    c0: OptId = None
    h_out: OptId = None
    c_out: OptId = None
    reads = ("input", "weights", "h0", "c0")
    writes = ("output", "h_out", "c_out")


@instruction
class Attention(Instruction):
    """Multi-head attention as torch.nn.MultiheadAttention(batch_first=True): packed input
    projection (3E x E), output projection (E x E); `causal` masks future positions."""

    query: Id
    key: Id
    value: Id
    in_proj_weight: Id
    in_proj_bias: OptId
    out_proj_weight: Id
    out_proj_bias: OptId
    output: Id
    embed_dim: Int
    num_heads: Int
    causal: Bool = False
    reads = ("query", "key", "value", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")

    def __post_init__(self) -> None:
        Instruction.__post_init__(self)
        if self.num_heads <= 0 or self.embed_dim % self.num_heads:
            raise MalformedProgram(f"Attention: embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}")


# --- activations -------------------------------------------------------------------------


def _activation(name: str, doc: str, **params: tuple[str, Any]) -> type[Instruction]:
    ann = {"input": "Id", "output": "Id", **{k: v[0] for k, v in params.items()}}
    namespace: dict[str, Any] = {"__annotations__": ann, **{k: v[1] for k, v in params.items()},
                                 "__doc__": doc, "__module__": __name__, "__qualname__": name}
    return instruction(type(name, (Instruction,), namespace))


ReLU: Any = _activation("ReLU", "max(x, 0)")
GELU: Any = _activation("GELU", "Gaussian error linear unit; approximate is 'none' or 'tanh'.", approximate=("Str", "none"))
Sigmoid: Any = _activation("Sigmoid", "1 / (1 + exp(-x))")
Tanh: Any = _activation("Tanh", "tanh(x)")
SiLU: Any = _activation("SiLU", "x * sigmoid(x)")
Softsign: Any = _activation("Softsign", "x / (1 + |x|)")
SELU: Any = _activation("SELU", "scaled ELU with the fixed SELU constants")
LeakyReLU: Any = _activation("LeakyReLU", "x if x > 0 else slope * x", slope=("Dec", "0.01"))
ELU: Any = _activation("ELU", "x if x > 0 else alpha * (exp(x) - 1)", alpha=("Dec", "1.0"))
Softplus: Any = _activation("Softplus", "log(1 + exp(beta x)) / beta (linear above threshold)",
                       beta=("Dec", "1.0"), threshold=("Dec", "20.0"))
HardSigmoid: Any = _activation("HardSigmoid", "clamp(alpha x + beta, 0, 1) (ONNX HardSigmoid)",
                          alpha=("Dec", "0.2"), beta=("Dec", "0.5"))
Softmax: Any = _activation("Softmax", "softmax along `dim`", dim=("Int", -1))
LogSoftmax: Any = _activation("LogSoftmax", "log-softmax along `dim`", dim=("Int", -1))


@instruction
class PReLU(Instruction):
    """x if x > 0 else weight * x (weight per channel, dim 1, or a single value)."""

    input: Id
    weight: Id
    output: Id
    reads = ("input", "weight")


# --- losses and training -----------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none")


@instruction
class CrossEntropyLoss(Instruction):
    """Cross-entropy of logits `input` against int64 class `target`."""

    input: Id
    target: Id
    output: Id
    reduction: Str = "mean"
    label_smoothing: Dec = 0.0
    reads = ("input", "target")


@instruction
class MSELoss(Instruction):
    """Mean squared error of `input` against `target`."""

    input: Id
    target: Id
    output: Id
    reduction: Str = "mean"
    reads = ("input", "target")


@instruction
class Backward(Instruction):
    """Gradients of scalar `loss` with respect to `wrt`, written to `grads` (same order)."""

    loss: Id
    wrt: Ids
    grads: Ids
    reads = ("loss", "wrt")
    writes = ("grads",)

    def __post_init__(self) -> None:
        Instruction.__post_init__(self)
        if len(self.wrt) != len(self.grads) or not self.wrt:
            raise MalformedProgram("Backward: wrt and grads must be non-empty and of equal length")


@instruction
class SGDStep(Instruction):
    """torch.optim.SGD's update, in place on `params` (and `momentum_buffers`, one per
    param, when momentum > 0)."""

    params: Ids
    grads: Ids
    lr: Dec
    momentum_buffers: Ids = ()
    momentum: Dec = 0.0
    dampening: Dec = 0.0
    weight_decay: Dec = 0.0
    nesterov: Bool = False
    reads = ("params", "grads", "momentum_buffers")
    writes = ()


@instruction
class AdamStep(Instruction):
    """torch.optim.Adam's update (AdamW's with `decoupled`), in place on `params`,
    `exp_avgs`, `exp_avg_sqs` and the scalar float32 `steps` counters (one each per param)."""

    params: Ids
    grads: Ids
    exp_avgs: Ids
    exp_avg_sqs: Ids
    steps: Ids
    lr: Dec = 0.001
    beta1: Dec = 0.9
    beta2: Dec = 0.999
    eps: Dec = 1e-8
    weight_decay: Dec = 0.0
    decoupled: Bool = False
    reads = ("params", "grads", "exp_avgs", "exp_avg_sqs", "steps")
    writes = ()

    def __post_init__(self) -> None:
        Instruction.__post_init__(self)
        n = len(self.params)
        if not (len(self.grads) == len(self.exp_avgs) == len(self.exp_avg_sqs) == len(self.steps) == n):
            raise MalformedProgram("AdamStep: params, grads, exp_avgs, exp_avg_sqs, steps need equal lengths")


@instruction
class PythonExecute(Instruction):
    """Run `code` in a fresh sandboxed Python process (`bcai.sandbox`). The code reads
    `inputs` (a dict of read-only numpy arrays, by input id) and fills `outputs` (a dict
    of arrays, by output spec name), or defines `main(inputs) -> dict`; each output must
    match its spec's dtype and shape."""

    code: Str
    inputs: Ids
    outputs: Specs
    constraints: Constraints = field(default_factory=PythonConstraints)
    reads = ("inputs",)
    writes = ("outputs",)


# Instructions whose writes are computed in place on ids they read.
IN_PLACE = (SGDStep, AdamStep)

__all__ = ["DTYPES", "INSTRUCTIONS", "Instruction", "PythonConstraints", "TensorSpec", "canonical_dec",
           "instruction_from_obj", *INSTRUCTIONS]
