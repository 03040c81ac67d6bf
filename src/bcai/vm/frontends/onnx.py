"""ONNX front end: `from_onnx(path_or_bytes) -> Program` (one `forward` entry).

Initializers become state (`TensorCreate(init="data")`: float ones are parameters, the
rest buffers); graph inputs become the entry's inputs (a symbolic dimension becomes -1);
graph outputs are the entry's outputs. Shapes come from ONNX shape inference where an
operator needs them (Flatten, Transpose without perm, Split without sizes, ...), and
shape computations on constants (Shape of a static tensor, Gather, Concat, Unsqueeze,
Cast, arithmetic) are folded at compile time, as torch's exporter emits them.

Operators: see `SUPPORTED_OPS`. Everything else, and supported operators used with
attributes the VM cannot express (e.g. AveragePool with dilations, LSTM with
peepholes), is collected over the whole graph and reported in one `UnsupportedOperators`
error; forms found while lowering (a dtype the VM lacks, an input needed as a constant:
`ConstantInputNeeded`) raise at the node. Semantics follow the ONNX spec at the model's
opset, checked against the ONNX backend test suite (tests/vm/test_vm_onnx_conformance.py);
where torch's kernels are narrower (pool padding, integer division) the lowering adds an
explicit Pad, a cast or another op rather than change the numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper, shape_inference

from bcai.errors import ConstantInputNeeded, InvalidFeed, InvalidModel, UnsupportedOperators
from bcai.vm import isa
from bcai.vm.frontends.builder import ProgramBuilder
from bcai.vm.frontends.onnx_resize import compute_resize_plan
from bcai.vm.program import Entry, Limits, Program

_ONNX_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16", onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT16: "int16", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}
_UNARY = {"Relu": isa.ReLU, "Sigmoid": isa.Sigmoid, "Tanh": isa.Tanh, "Softsign": isa.Softsign}
_TENSOR_UNARY = {"Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Neg": "neg", "Abs": "abs", "Erf": "erf",
                 "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Sign": "sign", "Round": "round",
                 "IsNaN": "isnan", "Not": "logical_not", "BitwiseNot": "bitwise_not",
                 **{op.capitalize(): op for op in isa.FLOAT_UNARY_OPS}}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "MatMul": "matmul",
           "Max": "maximum", "Min": "minimum", "Equal": "eq", "Less": "lt", "Greater": "gt", "LessOrEqual": "le",
           "GreaterOrEqual": "ge", "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor",
           "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}
_INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8")
_FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
# Reduce<X> = post(reduce(pre(x))), as the ONNX function bodies define them; "square" is x * x.
_REDUCE = {"ReduceSum": (None, "sum", None), "ReduceMean": (None, "mean", None), "ReduceMax": (None, "max", None),
           "ReduceMin": (None, "min", None), "ReduceProd": (None, "prod", None), "ReduceL1": ("abs", "sum", None),
           "ReduceL2": ("square", "sum", "sqrt"), "ReduceSumSquare": ("square", "sum", None),
           "ReduceLogSum": (None, "sum", "log"), "ReduceLogSumExp": (None, "logsumexp", None)}
_ID_BAD = re.compile(r"[^A-Za-z0-9_.:/\-\[\]]")


class _Graph:
    def __init__(self, model: onnx.ModelProto, max_const_bytes: int) -> None:
        self.model = model
        self.max_const_bytes = max_const_bytes
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.shapes: dict[str, tuple[int | None, ...]] = {}
        self.elem_types: dict[str, int] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            t = vi.type.tensor_type
            if t.elem_type:
                self.elem_types[vi.name] = t.elem_type
            if t.HasField("shape"):
                self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        self.ids: dict[str, str] = {}
        self.b = ProgramBuilder()

    def id(self, name: str) -> str:
        """The VM id of an ONNX value (sanitised, unique); constants become state on first use."""
        if name in self.ids:
            return self.ids[name]
        if name in self.consts:
            arr = np.ascontiguousarray(self.consts[name]).reshape(self.consts[name].shape)  # keeps a 0-d array 0-d
            dtype = _np_dtype_name(arr)
            ident = self._fresh_id(name)
            if dtype.startswith("float"):
                self.b.param(ident, tuple(arr.shape), "data", data=arr.astype(arr.dtype.newbyteorder("<")).tobytes(),
                             dtype=dtype)
            else:
                self.b.buffer(ident, tuple(arr.shape), "data", data=arr.astype(arr.dtype.newbyteorder("<")).tobytes(),
                              dtype=dtype)
            self.ids[name] = ident
            return ident
        raise InvalidModel(f"value {name!r} is used before any node produces it")

    def _fresh_id(self, name: str) -> str:
        base = _ID_BAD.sub("_", name)[:100] or "v"
        ident, k = base, 0
        taken = set(self.ids.values())
        while ident in taken:
            k += 1
            ident = f"{base}_{k}"
        return ident

    def out(self, name: str) -> str:
        ident = self._fresh_id(name)
        self.ids[name] = ident
        return ident

    def rank(self, name: str) -> int:
        if name in self.consts:
            return self.consts[name].ndim
        if name not in self.shapes:
            raise UnsupportedOperators(f"the rank of {name!r} is unknown (ONNX shape inference found none)")
        return len(self.shapes[name])

    def dtype(self, name: str) -> str | None:
        """The VM dtype of an ONNX value, or None when unknown or not one the VM has."""
        if name in self.consts:
            return _NP_DTYPES.get(self.consts[name].dtype)
        return _ONNX_DTYPES.get(self.elem_types.get(name, 0))

    def shape(self, name: str) -> tuple[int | None, ...]:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name not in self.shapes:
            raise UnsupportedOperators(f"the shape of {name!r} is unknown (ONNX shape inference found none)")
        return self.shapes[name]


_NP_DTYPES: dict[np.dtype, str] = {
    np.dtype(np.float32): "float32", np.dtype(np.float64): "float64", np.dtype(np.float16): "float16",
    np.dtype(np.int64): "int64", np.dtype(np.int32): "int32", np.dtype(np.int16): "int16", np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8", np.dtype(np.bool_): "bool",
}
_VM_TO_NP: dict[str, np.dtype] = {name: dt for dt, name in _NP_DTYPES.items()}


def _np_dtype_name(arr: np.ndarray) -> str:
    name = _NP_DTYPES.get(arr.dtype)
    if name is None:
        raise UnsupportedOperators(f"a constant of dtype {arr.dtype} (the VM has {', '.join(_NP_DTYPES.values())})")
    return name


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decode(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


# --- constant folding ----------------------------------------------------------------------


def _fold(g: _Graph, node: onnx.NodeProto, a: dict[str, Any]) -> bool:
    """Evaluate `node` in numpy when its inputs are constants (shape arithmetic)."""
    op, ins = node.op_type, [i for i in node.input]
    if op == "Constant":
        if "value" in a:
            g.consts[node.output[0]] = numpy_helper.to_array(a["value"])
        elif "value_float" in a or "value_int" in a:
            g.consts[node.output[0]] = np.array(a.get("value_float", a.get("value_int")))
        elif "value_floats" in a or "value_ints" in a:
            g.consts[node.output[0]] = np.array(a.get("value_floats", a.get("value_ints")))
        else:
            raise UnsupportedOperators("Constant (sparse or string value)")
        return True
    if op == "EyeLike" and (ins[0] in g.shapes or ins[0] in g.consts):
        dims = g.shape(ins[0])
        if len(dims) != 2 or None in dims:
            return False
        dtype = onnx.helper.tensor_dtype_to_np_dtype(a.get("dtype", g.elem_types.get(ins[0], onnx.TensorProto.FLOAT)))
        _check_const_size(g, node, dims, dtype)  # type: ignore[arg-type]
        g.consts[node.output[0]] = np.eye(dims[0], dims[1], a.get("k", 0), dtype=dtype)  # type: ignore[arg-type]
        return True
    if op in ("Shape", "Size") and (ins[0] in g.shapes or ins[0] in g.consts):
        if op == "Size":
            dims = g.shape(ins[0])
            if all(d is not None for d in dims):
                g.consts[node.output[0]] = np.array(math.prod(dims), dtype=np.int64)  # type: ignore[arg-type]
                return True
            return False
        # start/end (opset 15) slice the shape with Python's clamping, as the spec says.
        dims = g.shape(ins[0])[a.get("start", 0):a.get("end")]
        if all(d is not None for d in dims):
            g.consts[node.output[0]] = np.array(dims, dtype=np.int64)
            return True
    if not ins or not all(i == "" or i in g.consts for i in ins):
        return False
    if op == "ConstantOfShape":
        value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        shape = tuple(int(d) for d in g.consts[ins[0]].reshape(-1))
        _check_const_size(g, node, shape, value.dtype)
        g.consts[node.output[0]] = np.full(shape, value.reshape(-1)[0], dtype=value.dtype)
        return True
    c: list[Any] = [g.consts[i] if i else None for i in ins]
    if op == "Identity":
        r = c[0]
    elif op == "Cast":
        r = c[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))
    elif op == "CastLike":
        r = c[0].astype(c[1].dtype)
    elif op == "Range":
        r = _fold_range(g, node, c[0], c[1], c[2])
    elif op in _FOLD_ELEMENTWISE and all(x is not None and x.dtype.kind in "iub" for x in c):
        _check_const_size(g, node, np.broadcast_shapes(*(x.shape for x in c)), np.dtype(np.int64))
        r = _FOLD_ELEMENTWISE[op](*c)
    elif op == "Mod" and all(x.dtype.kind in "iu" for x in c) and np.all(c[1] != 0):
        r = (np.fmod if a.get("fmod", 0) else np.mod)(c[0], c[1])
    elif op in ("Max", "Min") and all(x is not None and x.dtype.kind in "iu" for x in c):
        r = (np.maximum if op == "Max" else np.minimum).reduce(np.broadcast_arrays(*c))
    elif op == "Div" and all(x.dtype.kind in "iu" for x in c) and np.all(c[1] != 0):
        q = np.floor_divide(c[0], c[1])
        r = q + ((q < 0) & (q * c[1] != c[0]))  # ONNX integer Div truncates toward zero
    elif op == "Gather":
        r = np.take(c[0], c[1], axis=a.get("axis", 0))
    elif op == "Unsqueeze":
        axes: Any = a.get("axes", c[1] if len(c) > 1 else None)
        r = c[0]
        for ax in sorted(int(x) % (r.ndim + len(axes)) for x in axes):
            r = np.expand_dims(r, ax)
    elif op == "Squeeze":
        axes = a.get("axes", c[1] if len(c) > 1 and c[1] is not None else None)
        r = np.squeeze(c[0], axis=None if axes is None else tuple(int(x) for x in axes))
    elif op == "Concat":
        r = np.concatenate(c, axis=a["axis"])
    elif op == "Transpose":
        r = np.transpose(c[0], a.get("perm"))
    elif op == "Reshape":
        r = c[0].reshape(c[1])
    elif op == "Expand":
        shape = np.broadcast_shapes(c[0].shape, tuple(int(d) for d in c[1]))
        _check_const_size(g, node, shape, c[0].dtype)
        r = np.broadcast_to(c[0], shape).copy()
    elif op == "Slice" and len(c) >= 3:
        axes = c[3] if len(c) > 3 and c[3] is not None else range(len(c[1]))
        steps = c[4] if len(c) > 4 and c[4] is not None else [1] * len(c[1])
        index = [slice(None)] * c[0].ndim
        for ax, s, e, st in zip(axes, c[1], c[2], steps):
            index[int(ax)] = slice(int(s), int(e), int(st))
        r = c[0][tuple(index)]
    else:
        return False
    g.consts[node.output[0]] = np.asarray(r)
    return True


# Element-wise operators folded on integer and bool constants (shape arithmetic, masks).
_FOLD_ELEMENTWISE: dict[str, Callable[..., Any]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Neg": np.negative, "Abs": np.abs, "Sign": np.sign,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "Not": np.logical_not, "And": np.logical_and, "Or": np.logical_or,
    "Xor": np.logical_xor, "Where": np.where,
}


def _fold_range(g: _Graph, node: onnx.NodeProto, start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Range: start, start + delta, ... before limit: max(ceil((limit - start) / delta), 0) elements."""
    span = (float(limit) - float(start)) / float(delta) if float(delta) else math.nan
    if not math.isfinite(span):
        raise InvalidModel(f"Range node {node.name!r}: start {start}, limit {limit}, delta {delta} give no finite count")
    _check_const_size(g, node, (max(math.ceil(span), 0),), start.dtype)
    return np.arange(start, limit, delta).astype(start.dtype)  # type: ignore[call-overload]


def _needs_constant(op: str, name: str) -> ConstantInputNeeded:
    return ConstantInputNeeded(f"{op} with a computed (non-constant) input {name!r}", name)


def _check_const_size(g: _Graph, node: onnx.NodeProto, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """A folded constant is program state: refuse one that could not fit the memory limit
    before numpy allocates it."""
    if any(d < 0 for d in shape):
        raise InvalidModel(f"{node.op_type} node {node.name!r}: negative dimension in {list(shape)}")
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > g.max_const_bytes:
        raise InvalidModel(f"{node.op_type} node {node.name!r} makes a constant of shape {list(shape)} "
                           f"({nbytes} bytes), over the program's memory limit ({g.max_const_bytes} bytes)")


# --- lowering --------------------------------------------------------------------------------


def _unsupported_reason(node: onnx.NodeProto, a: dict[str, Any]) -> str | None:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return f"{node.domain}.{op}"
    if op not in SUPPORTED_OPS:
        return op
    if op == "AveragePool" and any(d != 1 for d in a.get("dilations", ())):
        return "AveragePool(dilations)"  # torch's avg_pool has no dilation
    if op == "MaxPool" and len([o for o in node.output if o]) > 1:
        return "MaxPool(indices output)"
    if op == "LSTM":
        if a.get("layout", 0) != 0 or "clip" in a or a.get("input_forget", 0) or "activations" in a:
            return "LSTM(layout/clip/input_forget/activations)"
        if (len(node.input) > 4 and node.input[4]) or (len(node.input) > 7 and node.input[7]):
            return "LSTM(sequence_lens or peepholes)"
    if op == "Pad" and _decode(a.get("mode", "constant")) not in _PAD_MODES:
        return f"Pad(mode={_decode(a['mode'])})"
    return None


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _conv_pads(g: _Graph, x: str, pads: list[int], nd: int, *, value: float = 0.0,
               explicit: bool = False) -> tuple[str, tuple[int, ...]]:
    """Symmetric pads go to the conv/pool; asymmetric ones (or all, with `explicit`) become
    an explicit Pad with `value` first."""
    begin, end = pads[:nd], pads[nd:]
    if begin == end and not explicit:
        return x, tuple(begin)
    torch_pads: list[int] = []
    for d in reversed(range(nd)):
        torch_pads += [begin[d], end[d]]
    padded = g.b.fresh("pad")
    g.b.emit(isa.Pad(x, padded, tuple(torch_pads), "constant", value))
    return padded, (0,) * nd


def _check_window(node: onnx.NodeProto, kernel: tuple[int, ...], stride: tuple[int, ...],
                  dilation: tuple[int, ...]) -> None:
    nd = len(kernel)
    for name, values in (("kernel_shape", kernel), ("strides", stride), ("dilations", dilation)):
        if len(values) != nd or any(v < 1 for v in values):
            raise InvalidModel(f"{node.op_type} node {node.name!r}: {name} {list(values)} must be {nd} positive ints")


def _spatial_pads(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], kernel: tuple[int, ...],
                  stride: tuple[int, ...], dilation: tuple[int, ...]) -> list[int]:
    """ONNX pads (begins then ends); auto_pad SAME_UPPER/SAME_LOWER resolved from the input's
    static spatial size (output = ceil(input / stride)), VALID as no padding."""
    nd = len(kernel)
    _check_window(node, kernel, stride, dilation)
    auto = _decode(a.get("auto_pad", "NOTSET"))
    if auto == "VALID":
        return [0] * (2 * nd)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        return list(a.get("pads", (0,) * (2 * nd)))
    spatial = g.shape(node.input[0])[2:]
    if len(spatial) != nd or any(d is None for d in spatial):
        raise UnsupportedOperators(f"{node.op_type}(auto_pad={auto}) on an input of unknown spatial size")
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, stride, dilation):
        assert size is not None
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else big)
        ends.append(big if auto == "SAME_UPPER" else small)
    return begins + ends


def _lower(g: _Graph, node: onnx.NodeProto, a: dict[str, Any]) -> None:
    op, b = node.op_type, g.b
    ins = list(node.input)
    x = g.id(ins[0]) if ins and ins[0] else ""  # "" is not a valid id: an op that needs x fails

    def emit(make: Callable[[str], isa.Instruction], k: int = 0) -> None:
        b.emit(make(g.out(node.output[k])))

    def const(k: int) -> np.ndarray | None:
        if len(ins) <= k or not ins[k]:
            return None
        if ins[k] not in g.consts:
            raise _needs_constant(op, ins[k])
        return g.consts[ins[k]]

    if op == "Identity":
        g.ids[node.output[0]] = x  # type: ignore[assignment]
    elif op == "Dropout":
        # Inference is the identity; training mode (opset 12: an input) draws a random
        # mask the VM cannot reproduce, so it is refused unless the ratio is 0.
        training = bool(a.get("is_test", 1) == 0 and g.opset < 7)
        if len(ins) > 2 and ins[2]:
            flag = const(2)
            training = bool(flag.reshape(-1)[0])  # type: ignore[union-attr]
        ratio = const(1) if len(ins) > 1 and ins[1] else np.array(a.get("ratio", 0.5))
        if training and float(ratio.reshape(-1)[0]) != 0.0:  # type: ignore[union-attr]
            raise UnsupportedOperators("Dropout in training mode (a random mask)")
        g.ids[node.output[0]] = x  # type: ignore[assignment]
        if len(node.output) > 1 and node.output[1]:  # the mask keeps everything
            shape = g.shape(ins[0])
            if any(d is None for d in shape):
                raise UnsupportedOperators("Dropout mask output of a dynamic shape")
            mask_dtype = np.bool_ if g.opset >= 10 else onnx.helper.tensor_dtype_to_np_dtype(g.elem_types[ins[0]])
            g.consts[node.output[1]] = np.ones(shape, dtype=mask_dtype)  # type: ignore[arg-type]
    elif op in _UNARY:
        emit(lambda o: _UNARY[op](x, o))
    elif op in _TENSOR_UNARY:
        emit(lambda o: isa.TensorOp(_TENSOR_UNARY[op], (x,), o))
    elif op in _BINARY or op in ("Sum", "Mean", "Mod", "BitShift"):
        _elementwise(g, node, a, x)
    elif op == "IsInf":
        _is_inf(g, node, a, x)
    elif op == "LeakyRelu":
        emit(lambda o: isa.LeakyReLU(x, o, a.get("alpha", 0.01)))
    elif op == "Elu":
        emit(lambda o: isa.ELU(x, o, a.get("alpha", 1.0)))
    elif op == "Selu":
        alpha, gamma = a.get("alpha", 1.67326319217681884765625), a.get("gamma", 1.05070102214813232421875)
        if abs(alpha - 1.6732632) <= 1e-6 and abs(gamma - 1.0507009) <= 1e-6:
            emit(lambda o: isa.SELU(x, o))
        else:  # selu = gamma * elu(x, alpha)
            elu = b.fresh("selu_elu")
            b.emit(isa.ELU(x, elu, alpha))
            emit(lambda o: isa.TensorOp("mul", (elu,), o, value=gamma))
    elif op == "PRelu":
        _prelu(g, node, x)
    elif op == "Softplus":
        emit(lambda o: isa.Softplus(x, o))
    elif op == "HardSigmoid":
        emit(lambda o: isa.HardSigmoid(x, o, a.get("alpha", 0.2), a.get("beta", 0.5)))
    elif op == "Gelu":
        emit(lambda o: isa.GELU(x, o, _decode(a.get("approximate", "none"))))
    elif op in ("Softmax", "LogSoftmax"):
        _softmax(g, node, a, x)
    elif op == "Gemm":
        _gemm(g, node, a, x)
    elif op in ("Conv", "ConvTranspose"):
        _conv(g, node, a, x)
    elif op in ("MaxPool", "AveragePool"):
        _pool(g, node, a, x)
    elif op in ("GlobalAveragePool", "GlobalMaxPool"):
        dims = tuple(range(2, g.rank(ins[0])))
        emit(lambda o: isa.TensorOp("mean" if op == "GlobalAveragePool" else "max", (x,), o, dims=dims, keepdim=True))
    elif op == "BatchNormalization":
        if len([o for o in node.output if o]) > 1 or a.get("training_mode", 0):
            raise UnsupportedOperators("BatchNormalization in training mode")
        if a.get("spatial", 1) == 0:  # opset < 9: statistics per activation, not per channel
            raise UnsupportedOperators("BatchNormalization(spatial=0)")
        s, shift, m, v = (g.id(i) for i in ins[1:5])
        emit(lambda o: isa.BatchNorm(x, s, shift, m, v, o, False, 0.1, a.get("epsilon", 1e-5)))
    elif op == "LayerNormalization":
        axis, rank = a.get("axis", -1), g.rank(ins[0])
        if not -rank <= axis < rank:
            raise InvalidModel(f"LayerNormalization axis {axis} is out of range for rank {rank}")
        nd = -axis if axis < 0 else rank - axis
        s = g.id(ins[1])
        bias = g.id(ins[2]) if len(ins) > 2 and ins[2] else None
        emit(lambda o: isa.LayerNorm(x, s, bias, o, nd, a.get("epsilon", 1e-5)))
        if any(node.output[1:]):
            _layer_norm_statistics(g, node, a, x, nd)
    elif op == "Reshape":
        target = [int(d) for d in const(1)]  # type: ignore[union-attr]
        if 0 in target and a.get("allowzero", 0):
            raise UnsupportedOperators("Reshape(allowzero=1) to a zero-size dimension")
        emit(lambda o: isa.TensorOp("reshape", (x,), o, dims=tuple(target)))
    elif op == "Expand":
        dims = tuple(int(d) for d in const(1))  # type: ignore[union-attr]
        emit(lambda o: isa.TensorOp("expand", (x,), o, dims=dims))
    elif op == "Flatten":
        axis = a.get("axis", 1)
        rank = g.rank(ins[0])
        axis = axis + rank if axis < 0 else axis  # in [0, rank]
        if axis in (0, rank):  # (1, n) or (n, 1)
            mid = b.fresh("flat")
            b.emit(isa.Flatten(x, mid, 0, -1) if rank else isa.TensorOp("reshape", (x,), mid, dims=(1,)))
            emit(lambda o: isa.TensorOp("unsqueeze", (mid,), o, dims=(0 if axis == 0 else 1,)))
        else:
            mid = b.fresh("flat")
            b.emit(isa.Flatten(x, mid, axis, -1))
            emit(lambda o: isa.Flatten(mid, o, 0, axis - 1))
    elif op == "Transpose":
        perm = tuple(a.get("perm", tuple(reversed(range(g.rank(ins[0]))))))
        emit(lambda o: isa.TensorOp("permute", (x,), o, dims=perm))
    elif op == "Concat":
        xs = tuple(g.id(i) for i in ins)
        emit(lambda o: isa.TensorOp("concat", xs, o, dims=(a["axis"],)))
    elif op == "Split":
        axis = a.get("axis", 0)
        sizes = a.get("split")
        if sizes is None and len(ins) > 1 and ins[1]:
            sizes = const(1)
        if sizes is None:
            dim = g.shape(ins[0])[axis]
            if dim is None:
                raise UnsupportedOperators("Split of a dynamic dimension without sizes")
            n = len(node.output)
            sizes = [-(-dim // n)] * (n - 1) + [dim - -(-dim // n) * (n - 1)]
        outs = tuple(g.out(o) for o in node.output)
        b.emit(isa.Split(x, outs, axis, tuple(int(s) for s in sizes)))  # type: ignore[arg-type]
    elif op == "Pad":
        pads = list(a["pads"]) if "pads" in a else [int(p) for p in const(1)]  # type: ignore[union-attr]
        value = a.get("value", 0.0)
        cv = const(2)
        if cv is not None and cv.size:
            value = float(cv.reshape(-1)[0])
        pad_axes = const(3)
        if pad_axes is not None:  # opset 18: pads for these axes only
            rank = g.rank(ins[0])
            full = [0] * (2 * rank)
            for k, ax in enumerate(int(v) % rank for v in pad_axes):
                full[ax], full[rank + ax] = pads[k], pads[len(pad_axes) + k]
            pads = full
        nd = len(pads) // 2
        torch_pads: list[int] = []
        for d in reversed(range(nd)):
            torch_pads += [pads[d], pads[nd + d]]
        while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
            torch_pads = torch_pads[:-2]
        mode = _PAD_MODES[_decode(a.get("mode", "constant"))]
        emit(lambda o: isa.Pad(x, o, tuple(torch_pads), mode, value))
    elif op in _REDUCE:
        _reduce(g, node, a, x)
    elif op in ("ArgMax", "ArgMin"):
        _arg_extreme(g, node, a, x)
    elif op == "Gather":
        idx = g.id(ins[1])
        emit(lambda o: isa.Gather(x, idx, o, a.get("axis", 0)))
    elif op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1]:
            axes = [int(v) for v in const(1)]  # type: ignore[union-attr]
        emit(lambda o: isa.TensorOp(op.lower(), (x,), o, dims=tuple(axes or ())))
    elif op == "Cast":
        dtype = _ONNX_DTYPES.get(a["to"])
        if dtype is None:
            raise UnsupportedOperators(f"Cast to ONNX type {a['to']}")
        emit(lambda o: isa.Cast(x, o, dtype))
    elif op == "Clip":
        _clip(g, node, a, x)
    elif op == "CastLike":
        like = g.dtype(ins[1])
        if like is None:
            raise UnsupportedOperators(f"CastLike to ONNX type {_type_name(g.elem_types.get(ins[1], 0))}")
        emit(lambda o: isa.Cast(x, o, like))
    elif op == "Trilu":
        offset = const(1)
        diagonal = 0 if offset is None else int(offset.reshape(-1)[0])
        emit(lambda o: isa.TensorOp("triu" if a.get("upper", 1) else "tril", (x,), o, dims=(diagonal,)))
    elif op == "GatherElements":
        idx = g.id(ins[1])
        emit(lambda o: isa.TensorOp("gather_elements", (x, idx), o, dims=(a.get("axis", 0),)))
    elif op in ("CumSum", "CumProd"):
        _cumulative(g, node, a, x, int(const(1).reshape(-1)[0]))  # type: ignore[union-attr]
    elif op == "Hardmax":
        _hardmax(g, node, a, x)
    elif op == "TopK":
        _top_k(g, node, a, x, int(a["k"]) if g.opset < 10 else int(const(1).reshape(-1)[0]))  # type: ignore[union-attr]
    elif op in ("ScatterElements", "Scatter"):  # Scatter: ScatterElements' name before opset 11
        idx, updates = g.id(ins[1]), g.id(ins[2])
        reduction = _decode(a.get("reduction", "none"))
        emit(lambda o: isa.ScatterElements(x, idx, updates, o, a.get("axis", 0), reduction))
    elif op == "Resize":
        _resize(g, node, a, x, [const(k) for k in (1, 2, 3)])
    elif op == "Einsum":
        operands = tuple(g.id(i) for i in ins)
        emit(lambda o: isa.Einsum(operands, o, _decode(a["equation"])))
    elif op == "OneHot":
        depth = const(1)
        _one_hot(g, node, a, x, int(depth.reshape(-1)[0]))  # type: ignore[union-attr]
    elif op == "LpNormalization":
        _lp_normalization(g, node, a, x)
    elif op == "Compress":
        _compress(g, node, a, x, const(1))  # type: ignore[arg-type]
    elif op == "EyeLike":  # not folded: the shape is dynamic
        raise UnsupportedOperators(f"EyeLike of {ins[0]!r}, whose shape is not static")
    elif op == "Range":  # not folded: a bound is computed
        raise _needs_constant(op, next(i for i in ins if i not in g.consts))
    elif op == "Size":  # not folded: the shape is dynamic
        raise UnsupportedOperators(f"Size of {ins[0]!r}, whose shape is not static")
    elif op == "Where":
        c, y = g.id(ins[1]), g.id(ins[2])
        emit(lambda o: isa.TensorOp("where", (x, c, y), o))
    elif op == "Slice":
        if "starts" in a:  # opset < 10: attributes
            starts, ends = np.array(a["starts"]), np.array(a["ends"])
            axes_arr = np.array(a["axes"]) if "axes" in a else None
            steps = None
        else:
            starts, ends, axes_arr, steps = const(1), const(2), const(3), const(4)  # type: ignore[assignment]
        if starts is None or ends is None:
            raise InvalidModel("Slice needs starts and ends")
        starts, ends = starts.reshape(-1), ends.reshape(-1)
        axes = list(range(len(starts))) if axes_arr is None else [int(v) for v in axes_arr.reshape(-1)]
        if not len(axes) == len(starts) == len(ends) or (steps is not None and steps.size != len(axes)):
            raise InvalidModel(f"Slice: starts, ends, axes and steps of different lengths "
                               f"({len(starts)}, {len(ends)}, {len(axes)}, {'-' if steps is None else steps.size})")
        big = 2**62
        clip = lambda v: int(max(-big, min(big, int(v))))  # noqa: E731
        emit(lambda o: isa.Slice(x, o, tuple(axes), tuple(clip(v) for v in starts),
                                 tuple(clip(v) for v in ends),
                                 () if steps is None else tuple(int(v) for v in steps.reshape(-1))))
    elif op == "LSTM":
        _lstm(g, node, a, x)
    elif op == "ConstantOfShape":  # not folded: the shape is computed
        raise _needs_constant(op, ins[0])
    elif op == "Shape":  # not folded: the dims asked for are dynamic
        raise UnsupportedOperators(f"Shape of {ins[0]!r}, whose shape is not static")
    else:  # pragma: no cover - guarded by _unsupported_reason
        raise UnsupportedOperators(op)


def _elementwise(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """Binary ops with numpy broadcasting; Max/Min/Sum/Mean take 1..N inputs. Integer Div
    truncates; Pow keeps the base's dtype (an integer base with a float exponent); Mod is
    Python's % (the divisor's sign) unless fmod=1 (C fmod, the dividend's sign)."""
    op, ins, b = node.op_type, list(node.input), g.b
    dtype = g.dtype(ins[0])
    if op == "Mod":
        kind = "fmod" if a.get("fmod", 0) else "mod"
    elif op == "BitShift":
        direction = _decode(a.get("direction", ""))
        if direction not in ("LEFT", "RIGHT"):
            raise InvalidModel(f"BitShift node {node.name!r}: direction must be LEFT or RIGHT, not {direction!r}")
        kind = "shift_left" if direction == "LEFT" else "shift_right"
    else:
        kind = {"Sum": "add", "Mean": "add"}.get(op) or _BINARY[op]
    if op == "Div" and dtype in _INT_DTYPES:
        kind = "div_trunc"
    operands = [x] + [g.id(i) for i in ins[1:]]
    if op not in ("Max", "Min", "Sum", "Mean") and len(operands) != 2:
        raise InvalidModel(f"{op} takes 2 inputs, got {len(operands)}")
    acc = operands[0]
    for y in operands[1:]:
        nxt = b.fresh(kind)
        b.emit(isa.TensorOp(kind, (acc, y), nxt))
        acc = nxt
    if op == "Mean" and len(operands) > 1:
        nxt = b.fresh("mean")
        b.emit(isa.TensorOp("div", (acc,), nxt, value=len(operands)))
        acc = nxt
    if op == "Pow" and dtype in _INT_DTYPES and g.dtype(ins[1]) not in _INT_DTYPES:
        nxt = b.fresh("pow_cast")
        b.emit(isa.Cast(acc, nxt, dtype))  # type: ignore[arg-type]
        acc = nxt
    _finish(g, node.output[0], acc)


def _cumulative(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, axis: int) -> None:
    """CumSum / CumProd: `reverse` runs from the end (flip, accumulate, flip back); `exclusive`
    leaves each element out (the input shifted by one along the axis, the identity first)."""
    b, rank = g.b, g.rank(node.input[0])
    kind = "cumsum" if node.op_type == "CumSum" else "cumprod"
    if not -rank <= axis < rank:
        raise InvalidModel(f"{node.op_type} node {node.name!r}: axis {axis} is out of range for rank {rank}")
    axis %= rank
    acc = x
    if a.get("reverse", 0):
        flipped = b.fresh("cumsum_flip")
        b.emit(isa.Slice(acc, flipped, (axis,), (-1,), (-(2**62),), (-1,)))
        acc = flipped
    if a.get("exclusive", 0):
        shifted = b.fresh("cumsum_shift")
        identity = 0.0 if kind == "cumsum" else 1.0
        b.emit(isa.Pad(acc, shifted, (0, 0) * (rank - 1 - axis) + (1, -1), value=identity))  # a negative pad crops
        acc = shifted
    summed = b.fresh(kind)
    b.emit(isa.TensorOp(kind, (acc,), summed, dims=(axis,)))
    if a.get("reverse", 0):
        back = b.fresh("cumsum_flip")
        b.emit(isa.Slice(summed, back, (axis,), (-1,), (-(2**62),), (-1,)))
        summed = back
    _finish(g, node.output[0], summed)


def _hardmax(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """Hardmax: 1 at the first maximum along the axis (argmax), 0 elsewhere. Before opset 13
    the input is coerced to 2-D at `axis` (default 1), as for Softmax."""
    b, shape = g.b, g.shape(node.input[0])
    rank, dtype = len(shape), g.dtype(node.input[0])
    axis = a.get("axis", -1 if g.opset >= 13 else 1)
    if not -rank <= axis < rank:
        raise InvalidModel(f"Hardmax node {node.name!r}: axis {axis} is out of range for rank {rank}")
    axis %= rank
    if dtype is None or shape[axis] is None or (g.opset < 13 and None in shape):
        raise UnsupportedOperators("Hardmax over a dynamic axis")
    if 0 in shape:
        g.ids[node.output[0]] = x  # nothing to mark
        return
    xin, size, trailing = x, shape[axis], rank - 1 - axis
    if g.opset < 13:
        xin, size, trailing = b.fresh("hardmax_2d"), math.prod(shape[axis:]), 0  # type: ignore[arg-type]
        b.emit(isa.TensorOp("reshape", (x,), xin, dims=(math.prod(shape[:axis]), -1)))  # type: ignore[arg-type]
        axis = 1
    positions = f"{node.output[0]}#positions"
    g.consts[positions] = np.arange(size, dtype=np.int64).reshape((size,) + (1,) * trailing)
    top, hit, marked = b.fresh("hardmax_argmax"), b.fresh("hardmax_hit"), b.fresh("hardmax")
    b.emit(isa.TensorOp("argmax", (xin,), top, dims=(axis,), keepdim=True))
    b.emit(isa.TensorOp("eq", (top, g.id(positions)), hit))
    b.emit(isa.Cast(hit, marked, dtype))
    if g.opset < 13:
        reshaped = b.fresh("hardmax_nd")
        b.emit(isa.TensorOp("reshape", (marked,), reshaped, dims=tuple(shape)))  # type: ignore[arg-type]
        marked = reshaped
    _finish(g, node.output[0], marked)


def _top_k(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, k: int) -> None:
    """TopK: a stable sort (ties keep the lower index first, as the spec asks), then the first k."""
    b, shape = g.b, g.shape(node.input[0])
    axis = a.get("axis", -1)
    if not -len(shape) <= axis < len(shape):
        raise InvalidModel(f"TopK node {node.name!r}: axis {axis} is out of range for rank {len(shape)}")
    size = shape[axis]
    if k < 0 or (size is not None and k > size):
        raise InvalidModel(f"TopK node {node.name!r}: k={k} for an axis of size {size}")
    values, indices = b.fresh("topk_values"), b.fresh("topk_indices")
    b.emit(isa.Sort(x, values, indices, axis, bool(a.get("largest", 1))))
    for sorted_id, name in zip((values, indices), node.output):
        if name:
            b.emit(isa.Slice(sorted_id, g.out(name), (axis,), (0,), (k,)))


_RESIZE_DEFAULTS = {"antialias": 0, "axes": (), "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75,
                    "exclude_outside": 0, "extrapolation_value": 0.0, "keep_aspect_ratio_policy": "stretch",
                    "mode": "nearest", "nearest_mode": "round_prefer_floor"}


def _resize(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, inputs: list[np.ndarray | None]) -> None:
    """Resize (opset 11+), one resized axis at a time (see onnx_resize.py): nearest gathers the
    chosen rows, linear and cubic multiply by the axis's interpolation matrix (an Einsum);
    tf_crop_and_resize's samples outside the input take `extrapolation_value`."""
    b, shape, dtype = g.b, g.shape(node.input[0]), g.dtype(node.input[0])
    if g.opset < 11:
        raise UnsupportedOperators("Resize before opset 11 (other coordinate rules)")
    if None in shape or dtype not in _FLOAT_DTYPES or len(shape) > 25:
        raise UnsupportedOperators(f"Resize of {dtype} {list(shape)} (static float tensors of rank <= 25)")
    attrs = {k: _decode(a.get(k, v)) for k, v in _RESIZE_DEFAULTS.items()}
    roi, scales, sizes = inputs
    plan = compute_resize_plan(tuple(shape), attrs, roi, scales, sizes, g.max_const_bytes)  # type: ignore[arg-type]
    letters = "abcdefghijklmnopqrstuvwxy"[:len(shape)]
    acc = x
    for axis, weights, outside in plan:
        base = f"{node.output[0]}#resize{axis}"
        resized = b.fresh("resize")
        if attrs["mode"] == "nearest":  # one 1 per row: a gather copies the chosen rows exactly
            g.consts[base] = weights.argmax(axis=1).astype(np.int64)
            b.emit(isa.Gather(acc, g.id(base), resized, axis))
        else:
            g.consts[base] = weights.astype(_VM_TO_NP[dtype])  # type: ignore[index]
            equation = f"{letters},z{letters[axis]}->{letters[:axis]}z{letters[axis + 1:]}"
            b.emit(isa.Einsum((acc, g.id(base)), resized, equation))
        if outside is not None:
            g.consts[f"{base}#outside"] = outside.reshape(outside.shape + (1,) * (len(shape) - 1 - axis))
            g.consts[f"{base}#value"] = np.array(attrs["extrapolation_value"], dtype=_VM_TO_NP[dtype])  # type: ignore[index]
            inside = resized
            resized = b.fresh("resize_extrapolated")
            b.emit(isa.TensorOp("where", (g.id(f"{base}#outside"), g.id(f"{base}#value"), inside), resized))
        acc = resized
    _finish(g, node.output[0], acc)


def _one_hot(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, depth: int) -> None:
    """OneHot as the reference computes it: negative indices wrap once (index + depth), other
    out-of-range ones match nothing; y = hit * (on - off) + off in the values' dtype."""
    b, ins = g.b, list(node.input)
    rank, idx_dtype = g.rank(ins[0]), g.dtype(ins[0])
    axis = a.get("axis", -1)
    if not -rank - 1 <= axis <= rank:
        raise InvalidModel(f"OneHot node {node.name!r}: axis {axis} is out of range for rank {rank}")
    axis %= rank + 1
    if depth < 1 or idx_dtype is None:
        raise InvalidModel(f"OneHot node {node.name!r}: depth {depth} (must be positive) of {idx_dtype} indices")
    positions = f"{node.output[0]}#positions"
    _check_const_size(g, node, (depth,), np.dtype(np.int64))
    g.consts[positions] = np.arange(depth).astype(_VM_TO_NP[idx_dtype]).reshape((depth,) + (1,) * (rank - axis))
    negative, shifted, wrapped, column, hit = (b.fresh(n) for n in ("onehot_neg", "onehot_shift", "onehot_wrap",
                                                                     "onehot_col", "onehot_hit"))
    b.emit(isa.TensorOp("lt", (x,), negative, value=0))
    b.emit(isa.TensorOp("add", (x,), shifted, value=depth))
    b.emit(isa.TensorOp("where", (negative, shifted, x), wrapped))
    b.emit(isa.TensorOp("unsqueeze", (wrapped,), column, dims=(axis,)))
    b.emit(isa.TensorOp("eq", (g.id(positions), column), hit))
    values, values_dtype = g.id(ins[2]), g.dtype(ins[2])
    off, on, spread, hits, scaled = (b.fresh(n) for n in ("onehot_off", "onehot_on", "onehot_spread", "onehot_cast",
                                                          "onehot_scaled"))
    b.emit(isa.Slice(values, off, (0,), (0,), (1,)))
    b.emit(isa.Slice(values, on, (0,), (1,), (2,)))
    b.emit(isa.TensorOp("sub", (on, off), spread))
    b.emit(isa.Cast(hit, hits, values_dtype))  # type: ignore[arg-type]
    b.emit(isa.TensorOp("mul", (hits, spread), scaled))
    b.emit(isa.TensorOp("add", (scaled, off), g.out(node.output[0])))


def _lp_normalization(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """LpNormalization: x / ||x||_p along the axis (p = 1 or 2), 0 where the norm is 0."""
    b, p, axis = g.b, a.get("p", 2), a.get("axis", -1)
    if p not in (1, 2):
        raise InvalidModel(f"LpNormalization node {node.name!r}: p must be 1 or 2, not {p}")
    mapped, norm, scaled, empty, out = (b.fresh(n) for n in ("lp_map", "lp_norm", "lp_div", "lp_zero", "lp"))
    b.emit(isa.TensorOp("abs", (x,), mapped) if p == 1 else isa.TensorOp("mul", (x, x), mapped))
    b.emit(isa.TensorOp("sum", (mapped,), norm, dims=(axis,), keepdim=True))
    if p == 2:
        root = b.fresh("lp_sqrt")
        b.emit(isa.TensorOp("sqrt", (norm,), root))
        norm = root
    b.emit(isa.TensorOp("div", (x, norm), scaled))
    b.emit(isa.TensorOp("eq", (norm,), empty, value=0))
    b.emit(isa.TensorOp("where", (empty, norm, scaled), g.out(node.output[0])))  # norm is 0 there


def _compress(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, condition: np.ndarray) -> None:
    """Compress with a constant condition: a Gather of the selected positions (of the
    flattened input without an axis)."""
    b = g.b
    picked = f"{node.output[0]}#picked"
    g.consts[picked] = np.nonzero(condition.reshape(-1))[0].astype(np.int64)
    if "axis" not in a:
        flat = b.fresh("compress_flat")
        b.emit(isa.TensorOp("reshape", (x,), flat, dims=(-1,)))
        x = flat
    b.emit(isa.Gather(x, g.id(picked), g.out(node.output[0]), a.get("axis", 0)))


def _is_inf(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """IsInf; detect_positive / detect_negative = 0 drop that sign (x == +inf or x == -inf)."""
    positive, negative = a.get("detect_positive", 1), a.get("detect_negative", 1)
    out = g.out(node.output[0])
    if positive and negative:
        g.b.emit(isa.TensorOp("isinf", (x,), out))
    elif positive or negative:
        g.b.emit(isa.TensorOp("eq", (x,), out, value="inf" if positive else "-inf"))
    else:
        g.b.emit(isa.TensorOp("lt", (x,), out, value="-inf"))  # nothing is below -inf: all False


def _finish(g: _Graph, name: str, result: str) -> None:
    """Bind ONNX value `name` to `result`; when the last instruction wrote `result`, it
    writes the value's own id instead (program outputs keep their ONNX names)."""
    last = g.b.body[-1] if g.b.body else None
    if last is not None and getattr(last, "output", None) == result:
        g.b.body[-1] = replace(last, output=g.out(name))  # type: ignore[type-var]
    else:
        g.ids[name] = result


def _layer_norm_statistics(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, nd: int) -> None:
    """LayerNormalization's optional Mean and InvStdDev outputs (1 / sqrt(var + epsilon)),
    over the normalized axes with keepdims, computed in the stash type (float32 by default)."""
    b, rank = g.b, g.rank(node.input[0])
    dims = tuple(range(rank - nd, rank))
    stash = "float32" if a.get("stash_type", 1) == 1 else g.dtype(node.input[0])
    xs = x
    if stash != g.dtype(node.input[0]):
        xs = b.fresh("ln_stash")
        b.emit(isa.Cast(x, xs, stash))  # type: ignore[arg-type]
    mean, centred, square, var, shifted, std = (b.fresh(n) for n in ("ln_mean", "ln_centred", "ln_sq", "ln_var",
                                                                      "ln_var_eps", "ln_std"))
    b.emit(isa.TensorOp("mean", (xs,), mean, dims=dims, keepdim=True))
    b.emit(isa.TensorOp("sub", (xs, mean), centred))
    b.emit(isa.TensorOp("mul", (centred, centred), square))
    b.emit(isa.TensorOp("mean", (square,), var, dims=dims, keepdim=True))
    b.emit(isa.TensorOp("add", (var,), shifted, value=a.get("epsilon", 1e-5)))
    b.emit(isa.TensorOp("sqrt", (shifted,), std))
    outs = list(node.output) + [""] * 3
    if outs[1]:
        g.ids[outs[1]] = mean
    if outs[2]:
        b.emit(isa.TensorOp("reciprocal", (std,), g.out(outs[2])))


def _prelu(g: _Graph, node: onnx.NodeProto, x: str) -> None:
    """PReLU with a per-channel (or single) slope is the PReLU instruction; any other slope
    shape broadcasts as ONNX says: where(x < 0, x * slope, x)."""
    slope_name, b = node.input[1], g.b
    slope = g.id(slope_name)
    x_shape, s_shape = g.shape(node.input[0]), g.shape(slope_name)
    aligned = (1,) * (len(x_shape) - len(s_shape)) + tuple(s_shape)
    per_channel = len(x_shape) >= 2 and len(s_shape) <= len(x_shape) and x_shape[1] is not None and (
        all(d == 1 for k, d in enumerate(aligned) if k != 1) and aligned[1] in (1, x_shape[1]))
    if g.opset < 7 and len(s_shape) == 1 and len(x_shape) >= 2 and s_shape[0] == x_shape[1]:
        per_channel = True  # PRelu-6 and older: a 1-D slope is per channel
    if math.prod(d or 0 for d in s_shape) == 1 or per_channel:
        b.emit(isa.PReLU(x, slope, g.out(node.output[0])))
        return
    neg, scaled = b.fresh("prelu_neg"), b.fresh("prelu_scaled")
    b.emit(isa.TensorOp("lt", (x,), neg, value=0.0))
    b.emit(isa.TensorOp("mul", (x, slope), scaled))
    b.emit(isa.TensorOp("where", (neg, scaled, x), g.out(node.output[0])))


def _softmax(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """Softmax / LogSoftmax. Before opset 13 the input is coerced to 2-D at `axis` (default
    1) and normalised over the flattened trailing dims; the VM reshapes when that differs
    from the last axis."""
    op, b = node.op_type, g.b
    if op == "Softmax" and g.dtype(node.input[0]) == "float16":
        def emit(x: str, out: str, axis: int) -> None:
            _softmax_steps(g, x, out, axis)
    else:
        def emit(x: str, out: str, axis: int) -> None:
            b.emit((isa.Softmax if op == "Softmax" else isa.LogSoftmax)(x, out, axis))
    rank = g.rank(node.input[0])
    axis = a.get("axis", -1 if g.opset >= 13 else 1)
    if g.opset >= 13 or (axis % max(rank, 1)) == rank - 1:
        emit(x, g.out(node.output[0]), axis)
        return
    shape = g.shape(node.input[0])
    axis %= rank
    if any(d is None for d in shape):
        raise UnsupportedOperators(f"{op} (opset < 13) over axis {axis} of a dynamic shape")
    flat, normed = b.fresh("softmax_2d"), b.fresh("softmax")
    b.emit(isa.TensorOp("reshape", (x,), flat, dims=(math.prod(shape[:axis]), -1)))  # type: ignore[arg-type]
    emit(flat, normed, -1)
    b.emit(isa.TensorOp("reshape", (normed,), g.out(node.output[0]), dims=tuple(shape)))  # type: ignore[arg-type]


def _softmax_steps(g: _Graph, x: str, out: str, axis: int) -> None:
    """Softmax in float16 as its ONNX function body, Exp(x - ReduceMax) / ReduceSum, each step
    rounded to float16 as the ONNX reference computes it (torch's fused kernel computes in
    float32 and rounds once, an ulp away from the reference). Not for bfloat16: the reference
    sums bfloat16 in bfloat16, which no float32-accumulating kernel reproduces."""
    b = g.b
    peak, shifted, exps, total = (b.fresh(n) for n in ("softmax_max", "softmax_shift", "softmax_exp", "softmax_sum"))
    b.emit(isa.TensorOp("max", (x,), peak, dims=(axis,), keepdim=True))
    b.emit(isa.TensorOp("sub", (x, peak), shifted))
    b.emit(isa.TensorOp("exp", (shifted,), exps))
    b.emit(isa.TensorOp("sum", (exps,), total, dims=(axis,), keepdim=True))
    b.emit(isa.TensorOp("div", (exps, total), out))


def _axes_of(g: _Graph, node: onnx.NodeProto, a: dict[str, Any]) -> list[int] | None:
    """Axes from the attribute (older opsets) or the constant second input (newer)."""
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in g.consts:
            raise _needs_constant(node.op_type, node.input[1])
        return [int(v) for v in g.consts[node.input[1]].reshape(-1)]
    return None


def _reduce(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    op, b = node.op_type, g.b
    pre, kind, post = _REDUCE[op]
    dtype = g.dtype(node.input[0])
    if (kind in ("mean", "logsumexp") or post is not None) and dtype not in _FLOAT_DTYPES:
        raise UnsupportedOperators(f"{op} on {dtype or 'an unknown dtype'}")
    if pre is not None:
        mapped = b.fresh(pre)
        b.emit(isa.TensorOp("mul", (x, x), mapped) if pre == "square" else isa.TensorOp(pre, (x,), mapped))
        x = mapped
    axes = _axes_of(g, node, a)
    keep = bool(a.get("keepdims", 1))
    rank = g.rank(node.input[0])
    dims = tuple(axes) if axes else tuple(range(rank))  # no axes: all of them (keepdims applies)
    shape = g.shape(node.input[0])
    if (not axes and a.get("noop_with_empty_axes", 0)) or rank == 0:
        reduced = x
    elif kind in ("max", "min") and any(shape[d] == 0 for d in dims):
        _fold_empty_extreme(g, node, shape, dims, keep, kind)
        return
    else:
        reduced = b.fresh(kind)
        b.emit(isa.TensorOp(kind, (x,), reduced, dims=dims, keepdim=keep))
        if kind in ("sum", "prod") and dtype in ("int32", "int16", "int8", "uint8", "bool"):
            narrowed = b.fresh("narrow")  # torch widens these to int64
            b.emit(isa.Cast(reduced, narrowed, dtype))  # type: ignore[arg-type]
            reduced = narrowed
    if post is not None:
        mapped = b.fresh(post)
        b.emit(isa.TensorOp(post, (reduced,), mapped))
        reduced = mapped
    _finish(g, node.output[0], reduced)


def _fold_empty_extreme(g: _Graph, node: onnx.NodeProto, shape: tuple[int | None, ...], dims: tuple[int, ...],
                        keep: bool, kind: str) -> None:
    """ReduceMax / ReduceMin over an empty axis give the reduction's identity (-inf / +inf,
    or the dtype's extremes), which torch refuses to compute; the result is a constant."""
    rank = len(shape)
    axes = {d % rank for d in dims}
    out_shape = tuple(1 if k in axes else d for k, d in enumerate(shape) if keep or k not in axes)
    if any(d is None for d in out_shape):
        raise UnsupportedOperators(f"{node.op_type} over an empty axis of a dynamic shape")
    np_dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(g.elem_types[node.input[0]]))
    if np_dtype.kind == "f":
        value: Any = -np.inf if kind == "max" else np.inf
    elif np_dtype.kind == "b":
        value = kind == "min"
    else:
        info = np.iinfo(np_dtype)
        value = info.min if kind == "max" else info.max
    g.consts[node.output[0]] = np.full(tuple(int(d) for d in out_shape if d is not None), value, dtype=np_dtype)


def _arg_extreme(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """ArgMax / ArgMin; select_last_index looks at the axis reversed: n - 1 - index."""
    op, b = node.op_type, g.b
    axis, keep = a.get("axis", 0), bool(a.get("keepdims", 1))
    kind = op.lower()
    if not a.get("select_last_index", 0):
        b.emit(isa.TensorOp(kind, (x,), g.out(node.output[0]), dims=(axis,), keepdim=keep))
        return
    n = g.shape(node.input[0])[axis]
    if n is None:
        raise UnsupportedOperators(f"{op}(select_last_index) over a dynamic axis")
    flipped, idx, neg = b.fresh("flip"), b.fresh(kind), b.fresh("neg")
    b.emit(isa.Slice(x, flipped, (axis,), (-1,), (-(2**62),), (-1,)))
    b.emit(isa.TensorOp(kind, (flipped,), idx, dims=(axis,), keepdim=keep))
    b.emit(isa.TensorOp("neg", (idx,), neg))
    b.emit(isa.TensorOp("add", (neg,), g.out(node.output[0]), value=n - 1))


def _clip(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """Clip: float constant bounds are a Clamp; integer inputs and computed bounds use
    maximum/minimum with the bound tensors (same result, min > max gives max)."""
    ins, b = list(node.input), g.b
    bounds: list[str | float | None] = [a.get("min"), a.get("max")]
    dtype = g.dtype(ins[0])
    for k in (1, 2):
        if len(ins) > k and ins[k]:
            name = ins[k]
            is_float_const = name in g.consts and dtype not in _INT_DTYPES and g.consts[name].size == 1
            bounds[k - 1] = float(g.consts[name].reshape(-1)[0]) if is_float_const else g.id(name)
    lo, hi = bounds
    if all(v is None or isinstance(v, float) for v in bounds):
        if lo is None and hi is None:
            g.ids[node.output[0]] = x
            return
        b.emit(isa.Clamp(x, g.out(node.output[0]), lo, hi))
        return
    acc = x
    for kind, bound in (("maximum", lo), ("minimum", hi)):
        if bound is None:
            continue
        nxt = b.fresh(kind)
        if isinstance(bound, float):
            b.emit(isa.TensorOp(kind, (acc,), nxt, value=bound))
        else:
            b.emit(isa.TensorOp(kind, (acc, bound), nxt))
        acc = nxt
    _finish(g, node.output[0], acc)


def _conv(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    op, ins = node.op_type, list(node.input)
    w_shape = g.shape(ins[1])
    nd = len(w_shape) - 2
    if nd not in (1, 2, 3) or any(d is None for d in w_shape):
        raise UnsupportedOperators(f"{op} with a weight of shape {list(w_shape)} (1-3 spatial dims, static)")
    kernel = tuple(int(d) for d in a.get("kernel_shape", w_shape[2:]))  # type: ignore[arg-type]
    w = g.id(ins[1])
    bias = g.id(ins[2]) if len(ins) > 2 and ins[2] else None
    stride = tuple(a.get("strides", (1,) * nd))
    dilation = tuple(a.get("dilations", (1,) * nd))
    out = g.out(node.output[0])
    if op == "Conv":
        pads = _spatial_pads(g, node, a, kernel, stride, dilation)
        xin, padding = _conv_pads(g, x, pads, nd)
        conv = {1: isa.Conv1D, 2: isa.Conv2D, 3: isa.Conv3D}[nd]
        g.b.emit(conv(xin, w, bias, out, stride, padding, dilation, a.get("group", 1)))
        return
    _check_window(node, kernel, stride, dilation)
    conv_t = {1: isa.ConvTranspose1D, 2: isa.ConvTranspose2D, 3: isa.ConvTranspose3D}[nd]
    out_pad = tuple(a.get("output_padding", (0,) * nd))
    auto = _decode(a.get("auto_pad", "NOTSET"))
    pads = [0] * (2 * nd) if auto == "VALID" else list(a.get("pads", (0,) * (2 * nd)))
    if pads[:nd] == pads[nd:] and "output_shape" not in a and auto not in ("SAME_UPPER", "SAME_LOWER"):
        g.b.emit(conv_t(x, w, bias, out, stride, tuple(pads[:nd]), dilation, a.get("group", 1), out_pad))
        return
    _conv_transpose_cropped(g, node, a, x, w, bias, out, kernel, stride, dilation, pads, out_pad)


def _conv_transpose_cropped(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str, w: str, bias: str | None,
                            out: str, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
                            pads: list[int], out_pad: tuple[int, ...]) -> None:
    """ConvTranspose with asymmetric pads, output_shape or auto_pad SAME (as the ONNX
    reference computes them): the full transposed convolution, then one Pad whose negative
    amounts crop and positive ones extend with zeros, then the bias."""
    b, nd = g.b, len(kernel)
    spatial = g.shape(node.input[0])[2:]
    if len(spatial) != nd or any(d is None for d in spatial):
        raise UnsupportedOperators("ConvTranspose with asymmetric pads, output_shape or auto_pad on an input of "
                                   "unknown spatial size")
    full = [s * (int(i) - 1) + (k - 1) * d + 1 for i, k, s, d in zip(spatial, kernel, stride, dilation)]  # type: ignore[arg-type]
    auto = _decode(a.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        target = list(a["output_shape"])[-nd:] if "output_shape" in a else [int(i) * s for i, s in zip(spatial, stride)]  # type: ignore[arg-type]
        total = [f + p - t for f, p, t in zip(full, out_pad, target)]
        small = [t // 2 for t in total]
        begins = small if auto == "SAME_UPPER" else [t - h for t, h in zip(total, small)]
    else:
        begins = pads[:nd]
        target = list(a["output_shape"])[-nd:] if "output_shape" in a else [
            f + p - lo - hi for f, p, lo, hi in zip(full, out_pad, pads[:nd], pads[nd:])]
    if len(target) != nd or any(t < 1 for t in target):
        raise InvalidModel(f"ConvTranspose node {node.name!r}: output shape {target} is empty")
    raw, cropped = b.fresh("convt_full"), b.fresh("convt_crop")
    conv_t = {1: isa.ConvTranspose1D, 2: isa.ConvTranspose2D, 3: isa.ConvTranspose3D}[nd]
    b.emit(conv_t(x, w, None, raw, stride, (0,) * nd, dilation, a.get("group", 1), (0,) * nd))
    torch_pads: list[int] = []
    for d in reversed(range(nd)):
        torch_pads += [-begins[d], begins[d] + target[d] - full[d]]
    if bias is None:
        b.emit(isa.Pad(raw, out, tuple(torch_pads)))
        return
    b.emit(isa.Pad(raw, cropped, tuple(torch_pads)))
    column = b.fresh("convt_bias")
    b.emit(isa.TensorOp("reshape", (bias,), column, dims=(-1,) + (1,) * nd))
    b.emit(isa.TensorOp("add", (cropped, column), out))


def _pool(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    """MaxPool / AveragePool. torch pools take symmetric padding of at most half the
    (dilated) kernel; other pads become an explicit Pad (-inf for max, 0 for average with
    count_include_pad) where that gives the same windows, i.e. without ceil_mode."""
    op, b = node.op_type, g.b
    kernel = tuple(int(k) for k in a["kernel_shape"])
    nd = len(kernel)
    if nd not in (1, 2, 3):
        raise UnsupportedOperators(f"{op} over {nd} spatial dims")
    stride = tuple(a.get("strides", (1,) * nd))
    dilation = tuple(a.get("dilations", (1,) * nd))
    pads = _spatial_pads(g, node, a, kernel, stride, dilation)
    ceil = bool(a.get("ceil_mode", 0))
    fits = pads[:nd] == pads[nd:] and all(2 * p <= (k - 1) * d + 1 for p, k, d in zip(pads, kernel, dilation))
    dtype = g.dtype(node.input[0])
    if op == "MaxPool":
        xin, as_uint8 = x, dtype == "uint8"
        if as_uint8:  # torch pools floats only; every uint8 is exact in float32
            xin = b.fresh("pool_f32")
            b.emit(isa.Cast(x, xin, "float32"))
        elif dtype not in ("float32", "float64", "float16", "bfloat16"):
            raise UnsupportedOperators(f"MaxPool on {dtype or 'an unknown dtype'}")
        padding = tuple(pads[:nd])
        if not fits:
            if ceil:
                raise UnsupportedOperators("MaxPool with ceil_mode and pads torch cannot take (asymmetric or "
                                           "over half the kernel)")
            xin, padding = _conv_pads(g, xin, pads, nd, value=float("-inf"), explicit=True)
        max_pool = {1: isa.MaxPool1D, 2: isa.MaxPool2D, 3: isa.MaxPool3D}[nd]
        if as_uint8:
            pooled = b.fresh("pool")
            b.emit(max_pool(xin, pooled, kernel, stride, padding, ceil, dilation))
            b.emit(isa.Cast(pooled, g.out(node.output[0]), "uint8"))
        else:
            b.emit(max_pool(xin, g.out(node.output[0]), kernel, stride, padding, ceil, dilation))
        return
    include = bool(a.get("count_include_pad", 0))
    xin, padding = x, tuple(pads[:nd])
    avg_pool = {1: isa.AvgPool1D, 2: isa.AvgPool2D, 3: isa.AvgPool3D}[nd]
    if not fits:
        if ceil:
            raise UnsupportedOperators("AveragePool with ceil_mode and pads torch cannot take (asymmetric or over "
                                       "half the kernel)")
        xin, padding = _conv_pads(g, x, pads, nd, explicit=True)
        if not include:
            # Average over the real elements only: the zero-padded window sums divided by
            # the zero-padded window counts of a tensor of ones (both as fractions of k).
            spatial = g.shape(node.input[0])[2:]
            if any(d is None for d in spatial) or dtype is None:
                raise UnsupportedOperators("AveragePool excluding pads torch cannot take, on a dynamic shape")
            ones_name = f"{node.output[0]}#window_ones"
            g.consts[ones_name] = np.ones((1, 1, *(int(d) for d in spatial if d is not None)), dtype=_VM_TO_NP[dtype])
            ones, _ = _conv_pads(g, g.id(ones_name), pads, nd, explicit=True)
            sums, counts = b.fresh("pool_sum"), b.fresh("pool_count")
            b.emit(avg_pool(xin, sums, kernel, stride, padding, ceil, True))
            b.emit(avg_pool(ones, counts, kernel, stride, padding, ceil, True))
            b.emit(isa.TensorOp("div", (sums, counts), g.out(node.output[0])))
            return
    b.emit(avg_pool(xin, g.out(node.output[0]), kernel, stride, padding, ceil, include))


def _gemm(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    b = g.b
    ins = list(node.input)
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    trans_a, trans_b = a.get("transA", 0), a.get("transB", 0)
    c = g.id(ins[2]) if len(ins) > 2 and ins[2] else None
    if trans_a:
        t = b.fresh("gemm_at")
        b.emit(isa.TensorOp("transpose", (x,), t, dims=(0, 1)))
        x = t
    w = g.id(ins[1])
    if trans_b and alpha == 1.0 and beta == 1.0 and (c is None or len(g.shape(ins[2])) == 1):
        b.emit(isa.Linear(x, w, c, g.out(node.output[0])))
        return
    if not trans_b:
        t = b.fresh("gemm_bt")
        b.emit(isa.TensorOp("transpose", (w,), t, dims=(0, 1)))
        w = t
    y = b.fresh("gemm")
    b.emit(isa.Linear(x, w, None, y))
    if alpha != 1.0:
        y2 = b.fresh("gemm_alpha")
        b.emit(isa.TensorOp("mul", (y,), y2, value=alpha))
        y = y2
    if c is None:
        g.ids[node.output[0]] = y
        return
    if beta != 1.0:
        c2 = b.fresh("gemm_beta")
        b.emit(isa.TensorOp("mul", (c,), c2, value=beta))
        c = c2
    b.emit(isa.TensorOp("add", (y, c), g.out(node.output[0])))


def _lstm(g: _Graph, node: onnx.NodeProto, a: dict[str, Any], x: str) -> None:
    b, ins = g.b, list(node.input)
    hidden = a["hidden_size"]
    direction = _decode(a.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise UnsupportedOperators(f"LSTM(direction={direction})")
    dirs = 2 if direction == "bidirectional" else 1
    for name in ins[1:4]:
        if name and name not in g.consts:
            raise _needs_constant("LSTM", name)  # the instruction takes weights as state
    w_all, r_all = g.consts[ins[1]], g.consts[ins[2]]
    bias_all = g.consts[ins[3]] if len(ins) > 3 and ins[3] else None
    order = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in (0, 2, 3, 1)])  # iofc -> ifco (torch ifgo)
    weights = []
    base = g._fresh_id(node.name or node.output[0] or "lstm")
    for d in range(dirs):
        suffix = "_reverse" if d else ""
        parts = [("weight_ih", w_all[d][order]), ("weight_hh", r_all[d][order])]
        if bias_all is not None:
            parts += [("bias_ih", bias_all[d][:4 * hidden][order]), ("bias_hh", bias_all[d][4 * hidden:][order])]
        else:
            zeros = np.zeros(4 * hidden, dtype=w_all.dtype)
            parts += [("bias_ih", zeros), ("bias_hh", zeros)]
        for name, arr in parts:
            arr = np.ascontiguousarray(arr)
            weights.append(b.param(f"{base}.{name}_l0{suffix}", tuple(arr.shape), "data",
                                   data=arr.astype(arr.dtype.newbyteorder("<")).tobytes(), dtype=_np_dtype_name(arr)))
    h0 = g.id(ins[5]) if len(ins) > 5 and ins[5] else None
    c0 = g.id(ins[6]) if len(ins) > 6 and ins[6] else None
    outs = list(node.output) + [""] * (3 - len(node.output))
    seq = b.fresh("lstm_seq")
    h_out = g.out(outs[1]) if outs[1] else None
    c_out = g.out(outs[2]) if outs[2] else None
    if direction == "reverse":  # a forward pass over the time-reversed sequence, reversed back
        flipped, seq_flipped = b.fresh("lstm_rev_in"), b.fresh("lstm_rev_seq")
        b.emit(_reverse_time(x, flipped))
        b.emit(isa.LSTM(flipped, tuple(weights), seq_flipped, hidden, 1, False, False, True, h0, c0, h_out, c_out))
        b.emit(_reverse_time(seq_flipped, seq))
    else:
        b.emit(isa.LSTM(x, tuple(weights), seq, hidden, 1, dirs == 2, False, True, h0, c0, h_out, c_out))
    if outs[0]:
        # torch: (seq, batch, dirs*H); ONNX Y: (seq, dirs, batch, H)
        if dirs == 1:
            b.emit(isa.TensorOp("unsqueeze", (seq,), g.out(outs[0]), dims=(1,)))
        else:
            fw, bw = b.fresh("lstm_fw"), b.fresh("lstm_bw")
            b.emit(isa.Split(seq, (fw, bw), 2, (hidden, hidden)))
            fw1, bw1 = b.fresh("lstm_fw1"), b.fresh("lstm_bw1")
            b.emit(isa.TensorOp("unsqueeze", (fw,), fw1, dims=(1,)))
            b.emit(isa.TensorOp("unsqueeze", (bw,), bw1, dims=(1,)))
            b.emit(isa.TensorOp("concat", (fw1, bw1), g.out(outs[0]), dims=(1,)))


def _reverse_time(x: str, out: str) -> isa.Instruction:
    return isa.Slice(x, out, (0,), (-1,), (-(2**62),), (-1,))


# Operators the VM runs as their ONNX function body: the schema defines them in terms of
# other operators (Attention as MatMul, Softmax, masks ...), and onnx's inliner expands them.
FUNCTION_OPS = frozenset(
    ["Attention", "RMSNormalization", "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss", "CausalConvWithState",
     "SpaceToDepth", "DepthToSpace", "Celu", "ThresholdedRelu", "Shrink", "BlackmanWindow", "HammingWindow",
     "HannWindow", "GroupNormalization", "MeanVarianceNormalization", "HardSwish", "Mish", "Swish", "SwiGLU"])

SUPPORTED_OPS = frozenset(
    ["Identity", "Dropout", "Constant", "Shape", "LeakyRelu", "Elu", "Selu", "PRelu", "Softplus", "HardSigmoid",
     "Gelu", "Softmax", "LogSoftmax", "Gemm", "Conv", "ConvTranspose", "MaxPool", "AveragePool",
     "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "LayerNormalization", "Reshape", "Flatten",
     "Transpose", "Concat", "Split", "Pad", "ArgMax", "ArgMin", "Gather", "Squeeze", "Unsqueeze", "Cast", "Clip",
     "Where", "Slice", "LSTM", "Expand", "ConstantOfShape", "Sum", "Mean", "Mod", "BitShift", "IsInf", "CastLike",
     "Trilu", "GatherElements", "CumSum", "CumProd", "Range", "Size", "Hardmax", "OneHot", "LpNormalization",
     "Compress", "EyeLike", "TopK", "Einsum", "Resize", "ScatterElements", "Scatter", *FUNCTION_OPS]
    + list(_UNARY) + list(_TENSOR_UNARY) + list(_BINARY) + list(_REDUCE))


def from_onnx(source: str | Path | bytes, *, limits: Limits | None = None,
              bind: Mapping[str, np.ndarray] | None = None) -> Program:
    """Compile an ONNX model (a file path or the model's bytes) into a `forward` program.

    `bind` fixes graph inputs to values: they become constants (and leave the entry's
    inputs), so an operator that needs an input as a constant (Reshape's shape, axes,
    pads: `ConstantInputNeeded` otherwise) can be compiled for those values."""
    limits = limits or Limits()
    try:
        if isinstance(source, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(source))
            if any(t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors(model.graph)):
                # Bytes have no directory: external data would resolve against the process's cwd.
                raise InvalidModel("a model given as bytes cannot use external data; pass the file's path")
        else:
            # onnx.load refuses external-data locations that are absolute, leave the model's
            # directory (../) or are symbolic links.
            model = onnx.load(str(source))
        onnx.checker.check_model(model)
        # Operators first, before shape inference: the VM refuses these anyway, and ONNX
        # shape inference crashes the process on some hostile attributes of operators the
        # VM has no use for (fuzzing onnx 1.23: GatherND with batch_dims=-9 segfaults).
        problems = _unsupported_problems(model.graph)
        if problems:
            raise UnsupportedOperators(f"the ONNX graph uses operators the VM cannot express: {', '.join(problems)}")
        model = inline_function_ops(model)
        _refuse_inference_crashers(model.graph)
        if bind:
            _bind_inputs(model, bind)
        # data_prop: shape computations on constants (Shape -> Gather -> Concat -> Reshape)
        # give static shapes downstream, as they do once folded here.
        model = shape_inference.infer_shapes(model, data_prop=True)
    except (InvalidModel, InvalidFeed, UnsupportedOperators):
        raise
    except Exception as exc:  # protobuf, checker and IO errors come in several types
        raise InvalidModel(f"not a valid ONNX model: {exc}") from None
    try:
        return _compile(model, limits)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        # What the checker lets through but cannot be built (inconsistent shapes or
        # attributes); a compile error, not a crash.
        raise InvalidModel(f"the ONNX graph is inconsistent: {type(exc).__name__}: {exc}") from None


def _unsupported_problems(graph: onnx.GraphProto) -> list[str]:
    return sorted({r for n in graph.node if (r := _unsupported_reason(n, _attrs(n))) is not None})


def inline_function_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with its FUNCTION_OPS nodes replaced by their ONNX function bodies
    (the schema's definition at the model's opset, recursively); refuses a body that uses
    what the VM lacks, naming both."""
    used = sorted({n.op_type for n in model.graph.node if n.op_type in FUNCTION_OPS and n.domain in ("", "ai.onnx")})
    if not used:
        return model
    model = _copy(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    for node in (n for n in model.graph.node if n.op_type in used):
        # The bodies read attributes by reference (ReduceMean <axes = @axes>); the inliner
        # leaves an absent one absent, so the schema's defaults are written out first.
        given = {a.name for a in node.attribute}
        for name, attr in onnx.defs.get_schema(node.op_type, opset).attributes.items():
            if name not in given and attr.default_value.type != onnx.AttributeProto.UNDEFINED:
                node.attribute.append(attr.default_value)
    try:
        inlined = onnx.inliner.inline_selected_functions(model, [("", op) for op in FUNCTION_OPS],
                                                         inline_schema_functions=True)
    except Exception as exc:  # the inliner asserts (C++) on forms it cannot expand, e.g. an omitted optional input
        raise UnsupportedOperators(f"{', '.join(used)} in a form onnx cannot expand into its function body "
                                   f"({str(exc).strip()[:200]})") from None
    left = sorted({n.op_type for n in inlined.graph.node if n.op_type in FUNCTION_OPS})
    if left:
        raise UnsupportedOperators(f"{', '.join(left)} at opset {opset} (ONNX defines no function body for it there)")
    problems = _unsupported_problems(inlined.graph)
    if problems:
        raise UnsupportedOperators(f"the ONNX function body of {', '.join(used)} uses operators the VM cannot "
                                   f"express: {', '.join(problems)}")
    return inlined


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def _refuse_inference_crashers(graph: onnx.GraphProto) -> None:
    """Refuse what the checker passes but ONNX shape inference (C++) aborts the whole
    process on, found by fuzzing onnx 1.23: Split whose num_outputs differs from its
    number of outputs."""
    for node in graph.node:
        if node.op_type == "Split" and node.domain in ("", "ai.onnx"):
            n = next((a.i for a in node.attribute if a.name == "num_outputs"), None)
            if n is not None and n != len(node.output):
                raise InvalidModel(f"Split node {node.name!r}: num_outputs={n} but {len(node.output)} outputs")
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _refuse_inference_crashers(sub)


def _bind_inputs(model: onnx.ModelProto, bind: Mapping[str, np.ndarray]) -> None:
    """Turn the graph inputs named in `bind` into initializers holding the given values
    (shape inference then sees them, as it sees any constant)."""
    declared = {vi.name: vi for vi in model.graph.input}
    for name, value in bind.items():
        if name not in declared:
            raise InvalidFeed(f"cannot bind {name!r}: not an input of the graph (inputs: {sorted(declared)})")
        arr = np.asarray(value)
        t = declared[name].type.tensor_type
        want = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type) if t.elem_type else arr.dtype
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None
        if arr.dtype != want or (dims is not None and (len(dims) != arr.ndim or any(
                d is not None and d != s for d, s in zip(dims, arr.shape)))):
            raise InvalidFeed(f"value for {name!r} is {arr.dtype} {list(arr.shape)}, the graph declares {want} {dims}")
        model.graph.initializer.append(numpy_helper.from_array(arr, name))
    kept = [vi for vi in model.graph.input if vi.name not in bind]
    del model.graph.input[:]
    model.graph.input.extend(kept)


def _tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Initializers and Constant tensors of a graph and its subgraphs."""
    found = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                found.append(attr.t)
            found.extend(attr.tensors)
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found.extend(_tensors(sub))
    return found


def _compile(model: onnx.ModelProto, limits: Limits) -> Program:
    g = _Graph(model, limits.max_memory_bytes)
    nodes = list(model.graph.node)
    inputs = []
    for vi in model.graph.input:
        if vi.name in g.consts:
            continue
        t = vi.type.tensor_type
        dtype = _ONNX_DTYPES.get(t.elem_type)
        if dtype is None:
            raise UnsupportedOperators(f"input {vi.name!r} of ONNX type {_type_name(t.elem_type)} "
                                       f"(the VM has {', '.join(sorted(set(_ONNX_DTYPES.values())))})")
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        if any(d < -1 for d in shape):
            raise InvalidModel(f"input {vi.name!r} declares a negative dimension: {list(shape)}")
        inputs.append(isa.TensorSpec(g.out(vi.name), shape, dtype))
    for node in nodes:
        a = _attrs(node)
        if _fold(g, node, a):
            continue
        try:
            _lower(g, node, a)
        except ConstantInputNeeded as exc:
            raise ConstantInputNeeded(f"node {node.name or node.op_type!r}: {exc}", exc.value) from None
        except UnsupportedOperators as exc:
            raise UnsupportedOperators(f"node {node.name or node.op_type!r}: {exc}") from None
    outputs = tuple(g.id(o.name) for o in model.graph.output)
    b = g.b
    return Program(init=tuple(b.init), entries=(Entry("forward", tuple(inputs), b.take_body(), outputs),),
                   parameters=tuple(b.parameters), buffers=tuple(b.buffers), limits=limits)


def _type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)  # type: ignore[arg-type]
    except ValueError:
        return str(elem_type)
