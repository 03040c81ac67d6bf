"""ONNX front end: `from_onnx(path_or_bytes) -> Program` (one `forward` entry).

Initializers become state (`TensorCreate(init="data")`: float ones are parameters, the
rest buffers); graph inputs become the entry's inputs (a symbolic dimension becomes -1);
graph outputs are the entry's outputs. Shapes come from ONNX shape inference where an
operator needs them (Flatten, Transpose without perm, Split without sizes, ...), and
shape computations on constants (Shape of a static tensor, Gather, Concat, Unsqueeze,
Cast, arithmetic) are folded at compile time, as torch's exporter emits them.

Operators: see `SUPPORTED_OPS`. Everything else, and supported operators used with
attributes the VM cannot express (e.g. Conv with auto_pad SAME, LSTM with peepholes),
is collected over the whole graph and reported in one `UnsupportedOperators` error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from bcai.errors import InvalidModel, UnsupportedOperators
from bcai.vm import isa
from bcai.vm.frontends.builder import ProgramBuilder
from bcai.vm.program import Entry, Limits, Program

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16", onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.BOOL: "bool",
}
_UNARY = {"Relu": isa.ReLU, "Sigmoid": isa.Sigmoid, "Tanh": isa.Tanh, "Softsign": isa.Softsign}
_TENSOR_UNARY = {"Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Neg": "neg", "Abs": "abs", "Erf": "erf",
                 "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Sign": "sign"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "MatMul": "matmul",
           "Max": "maximum", "Min": "minimum", "Equal": "eq", "Less": "lt", "Greater": "gt"}
_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "prod"}
_ID_BAD = re.compile(r"[^A-Za-z0-9_.:/\-\[\]]")


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.shapes: dict[str, tuple[int | None, ...]] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        self.ids: dict[str, str] = {}
        self.b = ProgramBuilder()

    def id(self, name: str) -> str:
        """The VM id of an ONNX value (sanitised, unique); constants become state on first use."""
        if name in self.ids:
            return self.ids[name]
        if name in self.consts:
            arr = np.ascontiguousarray(self.consts[name])
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

    def shape(self, name: str) -> tuple[int | None, ...]:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name not in self.shapes:
            raise UnsupportedOperators(f"the shape of {name!r} is unknown (ONNX shape inference found none)")
        return self.shapes[name]


def _np_dtype_name(arr: np.ndarray) -> str:
    names = {np.float32: "float32", np.float64: "float64", np.float16: "float16", np.int64: "int64",
             np.int32: "int32", np.uint8: "uint8", np.bool_: "bool"}
    for t, n in names.items():
        if arr.dtype == t:
            return n
    raise UnsupportedOperators(f"initializer dtype {arr.dtype}")


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
    if op == "Shape" and ins[0] in g.shapes and all(d is not None for d in g.shapes[ins[0]]):
        g.consts[node.output[0]] = np.array(g.shapes[ins[0]], dtype=np.int64)
        return True
    if not ins or not all(i == "" or i in g.consts for i in ins):
        return False
    if op == "ConstantOfShape":
        value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        g.consts[node.output[0]] = np.full(tuple(int(d) for d in g.consts[ins[0]]), value.reshape(-1)[0],
                                           dtype=value.dtype)
        return True
    c: list[Any] = [g.consts[i] if i else None for i in ins]
    if op == "Identity":
        r = c[0]
    elif op == "Cast":
        r = c[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))
    elif op in ("Add", "Sub", "Mul", "Div") and all(x.dtype.kind in "iu" for x in c):
        r = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.floor_divide}[op](c[0], c[1])
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
        r = np.broadcast_to(c[0], np.broadcast_shapes(c[0].shape, tuple(int(d) for d in c[1]))).copy()
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


# --- lowering --------------------------------------------------------------------------------


def _unsupported_reason(g: _Graph, node: onnx.NodeProto, a: dict[str, Any]) -> str | None:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return f"{node.domain}.{op}"
    if op not in SUPPORTED_OPS:
        return op
    if op in ("Conv", "ConvTranspose", "MaxPool", "AveragePool") and _decode(a.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        return f"{op}(auto_pad={_decode(a['auto_pad'])})"
    if op == "ConvTranspose" and "output_shape" in a:
        return "ConvTranspose(output_shape)"
    if op == "MaxPool" and len([o for o in node.output if o]) > 1:
        return "MaxPool(indices output)"
    if op == "LSTM":
        if a.get("layout", 0) != 0 or "clip" in a or a.get("input_forget", 0) or "activations" in a:
            return "LSTM(layout/clip/input_forget/activations)"
        if (len(node.input) > 4 and node.input[4]) or (len(node.input) > 7 and node.input[7]):
            return "LSTM(sequence_lens or peepholes)"
    if op == "Dropout" and len([o for o in node.output if o]) > 1:
        return "Dropout(mask output)"
    if op == "Pad" and _decode(a.get("mode", "constant")) not in ("constant", "reflect", "edge"):
        return f"Pad(mode={_decode(a['mode'])})"
    return None


def _conv_pads(g: _Graph, x: str, pads: list[int], nd: int) -> tuple[str, tuple[int, ...]]:
    """Symmetric pads go to the conv; asymmetric ones become an explicit Pad first."""
    begin, end = pads[:nd], pads[nd:]
    if begin == end:
        return x, tuple(begin)
    torch_pads: list[int] = []
    for d in reversed(range(nd)):
        torch_pads += [begin[d], end[d]]
    padded = g.b.fresh("pad")
    g.b.emit(isa.Pad(x, padded, tuple(torch_pads)))
    return padded, (0,) * nd


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
            raise UnsupportedOperators(f"{op} with a computed (non-constant) input {ins[k]!r}")
        return g.consts[ins[k]]

    if op in ("Identity", "Dropout"):
        g.ids[node.output[0]] = x  # type: ignore[assignment]
    elif op in _UNARY:
        emit(lambda o: _UNARY[op](x, o))
    elif op in _TENSOR_UNARY:
        emit(lambda o: isa.TensorOp(_TENSOR_UNARY[op], (x,), o))
    elif op in _BINARY:
        y = g.id(ins[1])
        emit(lambda o: isa.TensorOp(_BINARY[op], (x, y), o))
    elif op == "LeakyRelu":
        emit(lambda o: isa.LeakyReLU(x, o, a.get("alpha", 0.01)))
    elif op == "Elu":
        emit(lambda o: isa.ELU(x, o, a.get("alpha", 1.0)))
    elif op == "Selu":
        if abs(a.get("alpha", 1.6732632) - 1.6732632) > 1e-6 or abs(a.get("gamma", 1.0507009) - 1.0507009) > 1e-6:
            raise UnsupportedOperators("Selu with non-default alpha/gamma")
        emit(lambda o: isa.SELU(x, o))
    elif op == "PRelu":
        w = g.id(ins[1])
        emit(lambda o: isa.PReLU(x, w, o))
    elif op == "Softplus":
        emit(lambda o: isa.Softplus(x, o))
    elif op == "HardSigmoid":
        emit(lambda o: isa.HardSigmoid(x, o, a.get("alpha", 0.2), a.get("beta", 0.5)))
    elif op == "Gelu":
        emit(lambda o: isa.GELU(x, o, _decode(a.get("approximate", "none"))))
    elif op in ("Softmax", "LogSoftmax"):
        axis = a.get("axis", -1 if g.opset >= 13 else 1)
        if g.opset < 13 and axis % g.rank(ins[0]) != g.rank(ins[0]) - 1:
            raise UnsupportedOperators(f"{op} (opset < 13) over a non-last axis")
        cls = isa.Softmax if op == "Softmax" else isa.LogSoftmax
        emit(lambda o: cls(x, o, axis))
    elif op == "Gemm":
        _gemm(g, node, a, x)
    elif op in ("Conv", "ConvTranspose"):
        w_arr = g.shape(ins[1])
        nd = len(w_arr) - 2
        w = g.id(ins[1])
        bias = g.id(ins[2]) if len(ins) > 2 and ins[2] else None
        stride = tuple(a.get("strides", (1,) * nd))
        dilation = tuple(a.get("dilations", (1,) * nd))
        pads = list(a.get("pads", (0,) * (2 * nd)))
        if op == "Conv":
            xin, padding = _conv_pads(g, x, pads, nd)  # type: ignore[arg-type]
            cls = {1: isa.Conv1D, 2: isa.Conv2D, 3: isa.Conv3D}[nd]
            emit(lambda o: cls(xin, w, bias, o, stride, padding, dilation, a.get("group", 1)))
        else:
            if pads[:nd] != pads[nd:]:
                raise UnsupportedOperators("ConvTranspose with asymmetric pads")
            cls = {1: isa.ConvTranspose1D, 2: isa.ConvTranspose2D, 3: isa.ConvTranspose3D}[nd]
            out_pad = tuple(a.get("output_padding", (0,) * nd))
            emit(lambda o: cls(x, w, bias, o, stride, tuple(pads[:nd]), dilation, a.get("group", 1), out_pad))
    elif op in ("MaxPool", "AveragePool"):
        kernel = tuple(a["kernel_shape"])
        nd = len(kernel)
        stride = tuple(a.get("strides", (1,) * nd))
        pads = list(a.get("pads", (0,) * (2 * nd)))
        ceil = bool(a.get("ceil_mode", 0))
        if op == "MaxPool":
            if pads[:nd] != pads[nd:]:
                raise UnsupportedOperators("MaxPool with asymmetric pads")
            cls = {1: isa.MaxPool1D, 2: isa.MaxPool2D, 3: isa.MaxPool3D}[nd]
            emit(lambda o: cls(x, o, kernel, stride, tuple(pads[:nd]), ceil, tuple(a.get("dilations", (1,) * nd))))
        else:
            xin, padding = x, tuple(pads[:nd])
            include = bool(a.get("count_include_pad", 0))
            if pads[:nd] != pads[nd:]:
                if not include:
                    raise UnsupportedOperators("AveragePool with asymmetric pads excluding padding")
                xin, padding = _conv_pads(g, x, pads, nd)  # type: ignore[arg-type]
            cls = {1: isa.AvgPool1D, 2: isa.AvgPool2D, 3: isa.AvgPool3D}[nd]
            emit(lambda o: cls(xin, o, kernel, stride, padding, ceil, include))
    elif op in ("GlobalAveragePool", "GlobalMaxPool"):
        dims = tuple(range(2, g.rank(ins[0])))
        emit(lambda o: isa.TensorOp("mean" if op == "GlobalAveragePool" else "max", (x,), o, dims=dims, keepdim=True))
    elif op == "BatchNormalization":
        if len([o for o in node.output if o]) > 1 or a.get("training_mode", 0):
            raise UnsupportedOperators("BatchNormalization in training mode")
        s, bias, m, v = (g.id(i) for i in ins[1:5])
        emit(lambda o: isa.BatchNorm(x, s, bias, m, v, o, False, 0.1, a.get("epsilon", 1e-5)))
    elif op == "LayerNormalization":
        axis = a.get("axis", -1)
        nd = -axis if axis < 0 else g.rank(ins[0]) - axis
        s = g.id(ins[1])
        bias = g.id(ins[2]) if len(ins) > 2 and ins[2] else None
        emit(lambda o: isa.LayerNorm(x, s, bias, o, nd, a.get("epsilon", 1e-5)))
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
        axis %= rank if rank else 1
        if axis == 0:
            mid = b.fresh("flat")
            b.emit(isa.Flatten(x, mid, 0, -1))
            emit(lambda o: isa.TensorOp("unsqueeze", (mid,), o, dims=(0,)))
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
        if len(ins) > 3 and ins[3]:
            raise UnsupportedOperators("Pad with axes input")
        nd = len(pads) // 2
        torch_pads: list[int] = []
        for d in reversed(range(nd)):
            torch_pads += [pads[d], pads[nd + d]]
        while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
            torch_pads = torch_pads[:-2]
        mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[_decode(a.get("mode", "constant"))]
        emit(lambda o: isa.Pad(x, o, tuple(torch_pads), mode, value))
    elif op in _REDUCE:
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1]:
            axes = [int(v) for v in const(1)]  # type: ignore[union-attr]
        if not axes and a.get("noop_with_empty_axes", 0):
            g.ids[node.output[0]] = x  # type: ignore[assignment]
            return
        keep = bool(a.get("keepdims", 1))
        emit(lambda o: isa.TensorOp(_REDUCE[op], (x,), o, dims=tuple(axes or ()), keepdim=keep))
    elif op in ("ArgMax", "ArgMin"):
        if a.get("select_last_index", 0):
            raise UnsupportedOperators(f"{op}(select_last_index)")
        emit(lambda o: isa.TensorOp(op.lower(), (x,), o, dims=(a.get("axis", 0),), keepdim=bool(a.get("keepdims", 1))))
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
        lo, hi = a.get("min"), a.get("max")
        lo_c, hi_c = const(1), const(2)
        lo = float(lo_c) if lo_c is not None else lo
        hi = float(hi_c) if hi_c is not None else hi
        emit(lambda o: isa.Clamp(x, o, lo, hi))
    elif op == "Where":
        c, y = g.id(ins[1]), g.id(ins[2])
        emit(lambda o: isa.TensorOp("where", (x, c, y), o))
    elif op == "Slice":
        starts, ends = const(1), const(2)
        axes, steps = const(3), const(4)
        axes = list(range(len(starts))) if axes is None else [int(v) for v in axes]  # type: ignore[arg-type]
        big = 2**62
        clip = lambda v: int(max(-big, min(big, int(v))))  # noqa: E731
        emit(lambda o: isa.Slice(x, o, tuple(axes), tuple(clip(v) for v in starts),  # type: ignore[union-attr]
                                 tuple(clip(v) for v in ends),  # type: ignore[union-attr]
                                 () if steps is None else tuple(int(v) for v in steps)))
    elif op == "LSTM":
        _lstm(g, node, a, x)
    else:  # pragma: no cover - guarded by _unsupported_reason
        raise UnsupportedOperators(op)


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
    if direction not in ("forward", "bidirectional"):
        raise UnsupportedOperators(f"LSTM(direction={direction})")
    dirs = 2 if direction == "bidirectional" else 1
    w_all, r_all = g.consts.get(ins[1]), g.consts.get(ins[2])
    if w_all is None or r_all is None:
        raise UnsupportedOperators("LSTM with non-constant weights")
    bias_all = g.consts.get(ins[3]) if len(ins) > 3 and ins[3] else None
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
            arr = np.ascontiguousarray(arr.astype(np.float32))
            weights.append(b.param(f"{base}.{name}_l0{suffix}", tuple(arr.shape), "data", data=arr.tobytes()))
    h0 = g.id(ins[5]) if len(ins) > 5 and ins[5] else None
    c0 = g.id(ins[6]) if len(ins) > 6 and ins[6] else None
    outs = list(node.output) + [""] * (3 - len(node.output))
    seq = b.fresh("lstm_seq")
    h_out = g.out(outs[1]) if outs[1] else None
    c_out = g.out(outs[2]) if outs[2] else None
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


SUPPORTED_OPS = frozenset(
    ["Identity", "Dropout", "Constant", "Shape", "LeakyRelu", "Elu", "Selu", "PRelu", "Softplus", "HardSigmoid",
     "Gelu", "Softmax", "LogSoftmax", "Gemm", "Conv", "ConvTranspose", "MaxPool", "AveragePool",
     "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "LayerNormalization", "Reshape", "Flatten",
     "Transpose", "Concat", "Split", "Pad", "ArgMax", "ArgMin", "Gather", "Squeeze", "Unsqueeze", "Cast", "Clip",
     "Where", "Slice", "LSTM", "Expand", "ConstantOfShape"] + list(_UNARY) + list(_TENSOR_UNARY) + list(_BINARY) + list(_REDUCE))


def from_onnx(source: str | Path | bytes, *, limits: Limits | None = None) -> Program:
    """Compile an ONNX model (a file path or the model's bytes) into a `forward` program."""
    try:
        if isinstance(source, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(source))
        else:
            model = onnx.load(str(source))
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # protobuf, checker and IO errors come in several types
        raise InvalidModel(f"not a valid ONNX model: {exc}") from None
    g = _Graph(model)
    nodes = list(model.graph.node)
    problems = sorted({r for n in nodes if (r := _unsupported_reason(g, n, _attrs(n))) is not None})
    if problems:
        raise UnsupportedOperators(f"the ONNX graph uses operators the VM cannot express: {', '.join(problems)}")
    inputs = []
    for vi in model.graph.input:
        if vi.name in g.consts:
            continue
        t = vi.type.tensor_type
        dtype = _ONNX_DTYPES.get(t.elem_type)
        if dtype is None:
            raise UnsupportedOperators(f"input {vi.name!r} of ONNX type {t.elem_type}")
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        inputs.append(isa.TensorSpec(g.out(vi.name), shape, dtype))
    for node in nodes:
        a = _attrs(node)
        if _fold(g, node, a):
            continue
        try:
            _lower(g, node, a)
        except UnsupportedOperators as exc:
            raise UnsupportedOperators(f"node {node.name or node.op_type!r}: {exc}") from None
    outputs = tuple(g.id(o.name) for o in model.graph.output)
    b = g.b
    return Program(init=tuple(b.init), entries=(Entry("forward", tuple(inputs), b.take_body(), outputs),),
                   parameters=tuple(b.parameters), buffers=tuple(b.buffers), limits=limits or Limits())
