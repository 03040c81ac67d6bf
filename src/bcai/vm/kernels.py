"""Kernels: what each instruction does on PyTorch tensors.

`make_kernel(instr, ctx)` turns one instruction into a plain Python callable, with its
attributes (decimal strings, dims) converted once, so the interpreter's hot loop is a list
of calls. A kernel takes the instruction's reads flattened in field order (None for an
absent optional id) and returns one tensor, a tuple of tensors (one per write slot,
None allowed) or None (in-place instructions).

The same kernels run on `meta` tensors during planning (shape/dtype inference, FLOPs,
memory): the few that cannot (random draws, optimizer steps, device moves, Python) branch
on `ctx.meta`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.optim.adam import adam as _adam
from torch.optim.sgd import sgd as _sgd

from bcai.errors import ExecutionFailed, PythonBridgeUnavailable, ShapeMismatch
from bcai.vm import isa

Kernel = Callable[..., Any]

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
    "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in TORCH_DTYPES.items()}


@dataclass
class KernelContext:
    """What kernels may use besides their inputs: the device, the seeded generators and
    the Python bridge. `meta` is True while planning on meta tensors."""

    device: torch.device
    init_generator: torch.Generator | None
    dropout_generator: torch.Generator | None
    accelerator: Callable[[], torch.device]
    python_bridge: Any = None
    meta: bool = False


def make_kernel(instr: isa.Instruction, ctx: KernelContext) -> Kernel:
    factory = _FACTORIES[type(instr)]
    return factory(instr, ctx)


def _f(dec: str | float | None) -> float | None:
    return None if dec is None else float(dec)


# --- tensors and devices ----------------------------------------------------------------


def _tensor_create(i: isa.TensorCreate, ctx: KernelContext) -> Kernel:
    dtype = TORCH_DTYPES[i.dtype]
    shape = tuple(i.shape)
    a, b = float(i.a), float(i.b)
    if i.data is not None:
        expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if len(i.data) != expected:
            raise ShapeMismatch(f"data has {len(i.data)} bytes; {list(shape)} of {i.dtype} needs {expected}")

    def run() -> torch.Tensor:
        if ctx.meta:
            t = torch.empty(shape, dtype=dtype, device="meta")
        elif i.init == "data":
            t = bytes_to_tensor(i.data or b"", i.dtype, shape).to(ctx.device)
        elif i.init in ("zeros", "ones", "full"):
            fill = {"zeros": 0.0, "ones": 1.0}.get(i.init, a)
            t = torch.full(shape, fill, dtype=dtype, device=ctx.device)
        else:
            # Drawn on the CPU from the program's generator, so every device gets the same values.
            cpu = torch.empty(shape, dtype=torch.float32)
            if i.init == "uniform":
                cpu.uniform_(a, b, generator=ctx.init_generator)
            else:
                cpu.normal_(a, b, generator=ctx.init_generator)
            t = cpu.to(device=ctx.device, dtype=dtype)
        if i.requires_grad:
            t.requires_grad_(True)
        return t

    return run


def bytes_to_tensor(data: bytes, dtype: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor from raw little-endian bytes (raises ShapeMismatch on a size mismatch)."""
    tdtype = TORCH_DTYPES[dtype]
    expected = math.prod(shape) * torch.empty((), dtype=tdtype).element_size()
    if len(data) != expected:
        raise ShapeMismatch(f"tensor data has {len(data)} bytes, shape {list(shape)} of {dtype} needs {expected}")
    if expected == 0:
        return torch.empty(shape, dtype=tdtype)
    return torch.frombuffer(bytearray(data), dtype=tdtype).reshape(shape).clone()


def tensor_to_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a tensor (row-major)."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def _cast(i: isa.Cast, ctx: KernelContext) -> Kernel:
    dtype = TORCH_DTYPES[i.dtype]
    return lambda x: x.to(dtype)


def _to_gpu(i: isa.ToGPU, ctx: KernelContext) -> Kernel:
    target = ctx.accelerator()
    return lambda x: x if ctx.meta else x.to(target)


def _to_cpu(i: isa.ToCPU, ctx: KernelContext) -> Kernel:
    return lambda x: x if ctx.meta else x.to("cpu")


# --- generic tensor ops ------------------------------------------------------------------

_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs,
    "erf": torch.erf, "reciprocal": torch.reciprocal, "sign": torch.sign, "floor": torch.floor,
    "ceil": torch.ceil, "round": torch.round, "isnan": torch.isnan, "isinf": torch.isinf,
    "logical_not": torch.logical_not, "bitwise_not": torch.bitwise_not,
    **{op: getattr(torch, op) for op in isa.FLOAT_UNARY_OPS},
}


def _python_mod(a: torch.Tensor, b: Any) -> torch.Tensor:
    """Python's (and numpy's) %: the divisor's sign, a zero result included (torch gives 0.0 % -2.0 as +0.0)."""
    r = torch.remainder(a, b)
    return torch.where(r == 0, torch.copysign(r, torch.as_tensor(b, dtype=r.dtype)), r) if r.is_floating_point() else r


_BINARY: dict[str, Callable[[Any, Any], torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "div_trunc": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "maximum": torch.maximum, "minimum": torch.minimum, "eq": torch.eq, "lt": torch.lt, "gt": torch.gt,
    "le": torch.le, "ge": torch.ge, "mod": _python_mod, "fmod": torch.fmod,
    "shift_left": torch.bitwise_left_shift, "shift_right": torch.bitwise_right_shift,
    **{op: getattr(torch, op) for op in isa.LOGICAL_OPS + ("bitwise_and", "bitwise_or", "bitwise_xor")},
}


def _tensor_op(i: isa.TensorOp, ctx: KernelContext) -> Kernel:
    op, dims, keep = i.op, tuple(i.dims), i.keepdim
    if op in _UNARY:
        return _UNARY[op]
    if op in _BINARY:
        fn = _BINARY[op]
        if i.value is not None:
            value = float(i.value)
            # An integral value stays an int next to an integer tensor (x + 1 keeps int64, as in torch).
            whole = int(value) if value.is_integer() else None

            def scalar(a: torch.Tensor) -> float | int:
                return whole if whole is not None and not a.is_floating_point() else value

            if op in ("maximum", "minimum"):
                return lambda a: fn(a, torch.tensor(scalar(a), dtype=a.dtype, device=a.device))
            return lambda a: fn(a, scalar(a))
        return fn
    if op == "matmul":
        return torch.matmul
    if op == "where":
        return lambda c, a, b: torch.where(c.to(torch.bool), a, b)
    if op == "concat":
        return lambda *xs: torch.cat(xs, dim=dims[0])
    if op in ("cumsum", "cumprod"):
        cumulative = torch.cumsum if op == "cumsum" else torch.cumprod
        return lambda x: cumulative(x, dims[0], dtype=x.dtype)  # torch would widen integers to int64
    if op in ("triu", "tril"):
        return lambda x: getattr(torch, op)(x, dims[0])
    if op == "gather_elements":
        def gather_elements(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            idx = idx.long()
            return torch.gather(x, dims[0], torch.where(idx < 0, idx + x.shape[dims[0]], idx))
        return gather_elements
    if op == "reshape":
        if 0 in dims:  # 0 copies the input's size at that index (ONNX Reshape semantics)
            return lambda x: x.reshape([x.shape[k] if d == 0 else d for k, d in enumerate(dims)])
        return lambda x: x.reshape(dims)
    if op == "expand":
        return lambda x: x.expand(torch.broadcast_shapes(x.shape, dims))
    if op == "transpose":
        if len(dims) != 2:
            raise ShapeMismatch("TensorOp transpose needs dims=(a, b)")
        return lambda x: x.transpose(dims[0], dims[1])
    if op == "permute":
        return lambda x: x.permute(dims)
    if op == "squeeze":
        return lambda x: x.squeeze(dims) if dims else x.squeeze()
    if op == "unsqueeze":
        def unsqueeze(x: torch.Tensor) -> torch.Tensor:
            rank = x.dim() + len(dims)
            for d in sorted(d % rank for d in dims):
                x = x.unsqueeze(d)
            return x
        return unsqueeze
    if op in ("sum", "mean", "prod"):
        reduce: Any = {"sum": torch.sum, "mean": torch.mean, "prod": torch.prod}[op]
        if op == "prod":
            def prod(x: torch.Tensor) -> torch.Tensor:
                for d in sorted((d % max(x.dim(), 1) for d in dims), reverse=True) if dims else ():
                    x = torch.prod(x, d, keepdim=keep)
                return x if dims else torch.prod(x)
            return prod
        return (lambda x: reduce(x, dims, keepdim=keep)) if dims else (lambda x: reduce(x))
    if op in ("max", "min"):
        extreme: Any = torch.amax if op == "max" else torch.amin
        return (lambda x: extreme(x, dims, keepdim=keep)) if dims else (lambda x: extreme(x))
    if op == "logsumexp":
        return lambda x: torch.logsumexp(x, dims or tuple(range(x.dim())), keepdim=keep)
    if op in ("argmax", "argmin"):
        fn = torch.argmax if op == "argmax" else torch.argmin
        if len(dims) > 1:
            raise ShapeMismatch(f"TensorOp {op}: dims must be () or (axis,)")
        return (lambda x: fn(x, dims[0], keepdim=keep)) if dims else (lambda x: fn(x))
    raise AssertionError(op)


def _sort(i: isa.Sort, ctx: KernelContext) -> Kernel:
    axis, descending = i.axis, i.descending
    return lambda x: tuple(torch.sort(x, dim=axis, descending=descending, stable=True))


_SCATTER_REDUCE = {"mul": "prod", "max": "amax", "min": "amin"}


def _scatter_elements(i: isa.ScatterElements, ctx: KernelContext) -> Kernel:
    axis, reduction = i.axis, i.reduction

    def run(x: torch.Tensor, idx: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        idx = idx.long()
        idx = torch.where(idx < 0, idx + x.shape[axis], idx)
        if reduction == "none" and not ctx.meta and idx.numel():
            # Two updates of one position have no defined order in ONNX: count the writes.
            writes = torch.zeros(x.shape, dtype=torch.int64, device=x.device)
            writes.scatter_add_(axis, idx, torch.ones_like(idx))
            if int(writes.max()) > 1:
                raise ExecutionFailed("ScatterElements: two updates of one position without a reduction")
        if reduction == "none":
            return torch.scatter(x, axis, idx, updates)
        if reduction == "add":
            return torch.scatter_add(x, axis, idx, updates)
        return torch.scatter_reduce(x, axis, idx, updates, _SCATTER_REDUCE[reduction], include_self=True)

    return run


def _einsum(i: isa.Einsum, ctx: KernelContext) -> Kernel:
    equation = i.equation
    return lambda *xs: torch.einsum(equation, *xs)


def _split(i: isa.Split, ctx: KernelContext) -> Kernel:
    sizes, axis = list(i.sizes), i.axis
    if len(sizes) != len(i.outputs):
        raise ShapeMismatch(f"Split: {len(sizes)} sizes for {len(i.outputs)} outputs")
    return lambda x: tuple(torch.split(x, sizes, dim=axis))


def _slice(i: isa.Slice, ctx: KernelContext) -> Kernel:
    steps = tuple(i.steps) or (1,) * len(i.axes)
    if not len(i.axes) == len(i.starts) == len(i.ends) == len(steps):
        raise ShapeMismatch("Slice: axes, starts, ends and steps need equal lengths")
    if any(s == 0 for s in steps):
        raise ShapeMismatch("Slice: step 0")

    def run(x: torch.Tensor) -> torch.Tensor:
        index: list[Any] = [slice(None)] * x.dim()
        flips = []
        for axis, start, end, step in zip(i.axes, i.starts, i.ends, steps):
            n = x.shape[axis]
            if step > 0:
                index[axis] = slice(*slice(start, end, step).indices(n))
            else:
                lo, hi, st = slice(start, end, step).indices(n)
                picked = list(range(lo, hi, st))
                index[axis] = torch.tensor(picked, dtype=torch.long, device=x.device) if picked else slice(0, 0)
                flips.append(axis)
        out = x
        for axis, idx in enumerate(index):
            if isinstance(idx, torch.Tensor):
                out = out.index_select(axis, idx)
            elif idx != slice(None):
                out = out[(slice(None),) * axis + (idx,)]
        return out

    return run


def _gather(i: isa.Gather, ctx: KernelContext) -> Kernel:
    axis = i.axis

    def run(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        ax = axis % x.dim()
        flat = idx.reshape(-1).long()
        flat = torch.where(flat < 0, flat + x.shape[ax], flat)
        out = x.index_select(ax, flat)
        return out.reshape(x.shape[:ax] + idx.shape + x.shape[ax + 1:])

    return run


def _pad(i: isa.Pad, ctx: KernelContext) -> Kernel:
    pads, mode, value = list(i.pads), i.mode, float(i.value)
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ShapeMismatch(f"Pad: unknown mode {mode!r}")
    if mode == "constant":
        return lambda x: F.pad(x, pads, mode="constant", value=value)
    return lambda x: F.pad(x, pads, mode=mode)


def _clamp(i: isa.Clamp, ctx: KernelContext) -> Kernel:
    lo, hi = _f(i.min), _f(i.max)
    return lambda x: torch.clamp(x, lo, hi)


def _flatten(i: isa.Flatten, ctx: KernelContext) -> Kernel:
    return lambda x: torch.flatten(x, i.start_dim, i.end_dim)


# --- layers ------------------------------------------------------------------------------


def _linear(i: isa.Linear, ctx: KernelContext) -> Kernel:
    return F.linear


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _conv(i: Any, ctx: KernelContext) -> Kernel:
    fn = _CONV[i.ND]
    stride, padding, dilation, groups = tuple(i.stride), tuple(i.padding), tuple(i.dilation), i.groups
    return lambda x, w, b: fn(x, w, b, stride, padding, dilation, groups)


def _conv_t(i: Any, ctx: KernelContext) -> Kernel:
    fn = _CONV_T[i.ND]
    stride, padding, out_pad, dilation = tuple(i.stride), tuple(i.padding), tuple(i.output_padding), tuple(i.dilation)
    groups = i.groups
    return lambda x, w, b: fn(x, w, b, stride, padding, out_pad, groups, dilation)


_MAXPOOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVGPOOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _maxpool(i: Any, ctx: KernelContext) -> Kernel:
    fn = _MAXPOOL[i.ND]
    kernel, stride = tuple(i.kernel), tuple(i.stride) or tuple(i.kernel)
    padding, dilation, ceil = tuple(i.padding), tuple(i.dilation), i.ceil_mode
    return lambda x: fn(x, kernel, stride, padding, dilation, ceil_mode=ceil)


def _avgpool(i: Any, ctx: KernelContext) -> Kernel:
    fn = _AVGPOOL[i.ND]
    kernel, stride = tuple(i.kernel), tuple(i.stride) or tuple(i.kernel)
    padding, ceil, include = tuple(i.padding), i.ceil_mode, i.count_include_pad
    return lambda x: fn(x, kernel, stride, padding, ceil, include)


def _batch_norm(i: isa.BatchNorm, ctx: KernelContext) -> Kernel:
    training, momentum, eps = i.training, float(i.momentum), float(i.eps)
    return lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training, momentum, eps)


def _layer_norm(i: isa.LayerNorm, ctx: KernelContext) -> Kernel:
    eps, nd = float(i.eps), i.normalized_ndim
    return lambda x, w, b: F.layer_norm(x, x.shape[x.dim() - nd:], w, b, eps)


def _dropout(i: isa.Dropout, ctx: KernelContext) -> Kernel:
    p = float(i.p)
    if not 0.0 <= p < 1.0:
        raise ShapeMismatch(f"Dropout: p must be in [0, 1), got {p}")
    if not i.training or p == 0.0:
        return lambda x: x

    def run(x: torch.Tensor) -> torch.Tensor:
        if ctx.meta:
            return x * 1.0  # same shape, and still connected to the autograd graph
        mask = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p, generator=ctx.dropout_generator)
        return x * mask * (1.0 / (1.0 - p))

    return run


def _embedding(i: isa.Embedding, ctx: KernelContext) -> Kernel:
    return lambda idx, w: F.embedding(idx, w, i.padding_idx)


def _lstm(i: isa.LSTM, ctx: KernelContext) -> Kernel:
    dirs = 2 if i.bidirectional else 1
    per = 4 if i.has_bias else 2
    n_weights = len(i.weights)
    if n_weights != i.num_layers * dirs * per:
        raise ShapeMismatch(f"LSTM: expected {i.num_layers * dirs * per} weights, got {n_weights}")
    hidden, layers, batch_first = i.hidden_size, i.num_layers, i.batch_first

    def run(x: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        weights, h0, c0 = list(rest[:n_weights]), rest[n_weights], rest[n_weights + 1]
        batch = x.shape[0] if batch_first else x.shape[1]
        shape = (layers * dirs, batch, hidden)
        if h0 is None:
            h0 = torch.zeros(shape, dtype=x.dtype, device=x.device)
        if c0 is None:
            c0 = torch.zeros(shape, dtype=x.dtype, device=x.device)
        out, h, c = torch.lstm(x, (h0, c0), weights, i.has_bias, layers, 0.0, False, i.bidirectional, batch_first)
        return out, h, c

    return run


def _attention(i: isa.Attention, ctx: KernelContext) -> Kernel:
    heads, embed, causal = i.num_heads, i.embed_dim, i.causal

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w_in: torch.Tensor, b_in: torch.Tensor | None,
            w_out: torch.Tensor, b_out: torch.Tensor | None) -> torch.Tensor:
        batch, tgt, _ = q.shape
        src = k.shape[1]
        if b_in is None:
            qp, kp, vp = F.linear(q, w_in[:embed]), F.linear(k, w_in[embed:2 * embed]), F.linear(v, w_in[2 * embed:])
        else:
            qp = F.linear(q, w_in[:embed], b_in[:embed])
            kp = F.linear(k, w_in[embed:2 * embed], b_in[embed:2 * embed])
            vp = F.linear(v, w_in[2 * embed:], b_in[2 * embed:])
        hd = embed // heads
        qh = qp.reshape(batch, tgt, heads, hd).transpose(1, 2)
        kh = kp.reshape(batch, src, heads, hd).transpose(1, 2)
        vh = vp.reshape(batch, src, heads, hd).transpose(1, 2)
        attn = F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal)
        return F.linear(attn.transpose(1, 2).reshape(batch, tgt, embed), w_out, b_out)

    return run


# --- activations -------------------------------------------------------------------------


def _simple(fn: Callable[..., torch.Tensor]) -> Callable[[Any, KernelContext], Kernel]:
    return lambda i, ctx: fn


def _gelu(i: Any, ctx: KernelContext) -> Kernel:
    approximate = i.approximate
    if approximate not in ("none", "tanh"):
        raise ShapeMismatch(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
    return lambda x: F.gelu(x, approximate=approximate)


def _leaky(i: Any, ctx: KernelContext) -> Kernel:
    slope = float(i.slope)
    return lambda x: F.leaky_relu(x, slope)


def _elu(i: Any, ctx: KernelContext) -> Kernel:
    alpha = float(i.alpha)
    return lambda x: F.elu(x, alpha)


def _softplus(i: Any, ctx: KernelContext) -> Kernel:
    beta, threshold = float(i.beta), float(i.threshold)
    return lambda x: F.softplus(x, beta, threshold)


def _hard_sigmoid(i: Any, ctx: KernelContext) -> Kernel:
    alpha, beta = float(i.alpha), float(i.beta)
    return lambda x: torch.clamp(x * alpha + beta, 0.0, 1.0)


def _softmax(i: Any, ctx: KernelContext) -> Kernel:
    dim = i.dim
    return lambda x: torch.softmax(x, dim)


def _log_softmax(i: Any, ctx: KernelContext) -> Kernel:
    dim = i.dim
    return lambda x: torch.log_softmax(x, dim)


def _prelu(i: isa.PReLU, ctx: KernelContext) -> Kernel:
    return lambda x, w: F.prelu(x, w.reshape(-1))


# --- losses and training -----------------------------------------------------------------


def _check_reduction(reduction: str) -> str:
    if reduction not in isa.REDUCTIONS:
        raise ShapeMismatch(f"unknown reduction {reduction!r} (known: {', '.join(isa.REDUCTIONS)})")
    return reduction


def _cross_entropy(i: isa.CrossEntropyLoss, ctx: KernelContext) -> Kernel:
    reduction, smoothing = _check_reduction(i.reduction), float(i.label_smoothing)
    return lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing)


def _mse(i: isa.MSELoss, ctx: KernelContext) -> Kernel:
    reduction = _check_reduction(i.reduction)

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.shape != t.shape:
            raise ShapeMismatch(f"MSELoss: input {list(x.shape)} and target {list(t.shape)} differ")
        return F.mse_loss(x, t, reduction=reduction)

    return run


def _backward(i: isa.Backward, ctx: KernelContext) -> Kernel:
    def run(loss: torch.Tensor, *wrt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if loss.numel() != 1:
            raise ShapeMismatch(f"Backward: loss must be a scalar, got shape {list(loss.shape)}")
        if not loss.requires_grad:
            raise ShapeMismatch("Backward: loss does not depend on any tensor that requires grad")
        if ctx.meta:
            grads = torch.autograd.grad(loss, wrt, allow_unused=True)
            return tuple(torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt))
        # backward() into .grad, as eager training does (zero_grad(); loss.backward()). The
        # buffers stay attached to the parameters until the next Backward, the lifetime they
        # have in eager training: freeing them at once makes the allocator return and
        # re-fault large blocks on every step (measured: several % on a 4096-wide MLP).
        for w in wrt:
            w.grad = None
        loss.backward(inputs=list(wrt))
        return tuple(torch.zeros_like(w) if w.grad is None else w.grad for w in wrt)

    return run


def _check_same_shapes(kind: str, *groups: tuple[torch.Tensor, ...]) -> None:
    for tensors in zip(*groups):
        shapes = {tuple(t.shape) for t in tensors[:-1] if t is not None}
        if len(shapes) > 1:
            raise ShapeMismatch(f"{kind}: parameter, gradient and state shapes differ: {sorted(shapes)}")


def _sgd_step(i: isa.SGDStep, ctx: KernelContext) -> Kernel:
    n = len(i.params)
    momentum = float(i.momentum)
    if len(i.grads) != n or (momentum > 0) != (len(i.momentum_buffers) == n) or (momentum == 0 and i.momentum_buffers):
        raise ShapeMismatch("SGDStep: one grad per param, and one momentum buffer per param exactly when momentum > 0")
    kwargs: dict[str, Any] = dict(weight_decay=float(i.weight_decay), momentum=momentum, lr=float(i.lr),
                  dampening=float(i.dampening), nesterov=i.nesterov, maximize=False)

    def run(*args: torch.Tensor) -> None:
        params, grads = list(args[:n]), list(args[n:2 * n])
        bufs: list[torch.Tensor | None] = list(args[2 * n:])
        if ctx.meta:
            _check_same_shapes("SGDStep", tuple(params), tuple(grads), tuple(args[2 * n:] or grads), tuple(params))
            return None
        with torch.no_grad():
            if momentum > 0:
                # Buffers start at zero (from init): buf = m*0 + (1-dampening)*g on the first
                # step, which is torch.optim.SGD's clone(g) exactly when dampening is 0.
                _sgd(params, grads, bufs, **kwargs)
            else:
                _sgd(params, grads, [None] * n, **kwargs)
        return None

    return run


def _adam_step(i: isa.AdamStep, ctx: KernelContext) -> Kernel:
    n = len(i.params)
    kwargs: dict[str, Any] = dict(amsgrad=False, beta1=float(i.beta1), beta2=float(i.beta2), lr=float(i.lr),
                  weight_decay=float(i.weight_decay), eps=float(i.eps), maximize=False)
    decoupled = i.decoupled

    def run(*args: torch.Tensor) -> None:
        params, grads, m, v, steps = (list(args[k * n:(k + 1) * n]) for k in range(5))
        if ctx.meta:
            _check_same_shapes("AdamStep", tuple(params), tuple(grads), tuple(m), tuple(v), tuple(params))
            return None
        with torch.no_grad():
            _adam(params, grads, m, v, [], steps, foreach=None, capturable=False, differentiable=False,
                  fused=None, grad_scale=None, found_inf=None, has_complex=False, decoupled_weight_decay=decoupled,
                  **kwargs)
        return None

    return run


def _python_execute(i: isa.PythonExecute, ctx: KernelContext) -> Kernel:
    def run(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if ctx.meta:
            # A dynamic (-1) output dim is planned as the same dim of the first input (or 1).
            first = inputs[0].shape if inputs else ()
            return tuple(torch.empty(tuple((first[k] if k < len(first) else 1) if d == -1 else d
                                           for k, d in enumerate(s.shape)),
                                     dtype=TORCH_DTYPES[s.dtype], device="meta") for s in i.outputs)
        if ctx.python_bridge is None:  # only a KernelContext built by hand lacks one
            raise PythonBridgeUnavailable("PythonExecute needs a Python bridge (bcai.sandbox.vm_bridge)")
        feeds = {name: t.detach().cpu().numpy() for name, t in zip(i.inputs, inputs)}
        results = ctx.python_bridge.execute(i.code, feeds, i.constraints)
        out = []
        for spec in i.outputs:
            if spec.name not in results:
                raise ShapeMismatch(f"PythonExecute: the code did not return output {spec.name!r}")
            t = torch.as_tensor(results[spec.name]).to(device=ctx.device)
            if DTYPE_NAMES.get(t.dtype) != spec.dtype or any(d not in (-1, s) for d, s in zip(spec.shape, t.shape)) \
                    or t.dim() != len(spec.shape):
                raise ShapeMismatch(f"PythonExecute: output {spec.name!r} is {DTYPE_NAMES.get(t.dtype)} "
                                    f"{list(t.shape)}, declared {spec.dtype} {list(spec.shape)}")
            out.append(t)
        return tuple(out)

    return run


_FACTORIES: dict[type, Callable[[Any, KernelContext], Kernel]] = {
    isa.TensorCreate: _tensor_create, isa.Cast: _cast, isa.ToGPU: _to_gpu, isa.ToCPU: _to_cpu,
    isa.TensorOp: _tensor_op, isa.Sort: _sort, isa.Einsum: _einsum, isa.ScatterElements: _scatter_elements,
    isa.Split: _split, isa.Slice: _slice, isa.Gather: _gather, isa.Pad: _pad,
    isa.Clamp: _clamp, isa.Flatten: _flatten, isa.Linear: _linear,
    isa.Conv1D: _conv, isa.Conv2D: _conv, isa.Conv3D: _conv,
    isa.ConvTranspose1D: _conv_t, isa.ConvTranspose2D: _conv_t, isa.ConvTranspose3D: _conv_t,
    isa.MaxPool1D: _maxpool, isa.MaxPool2D: _maxpool, isa.MaxPool3D: _maxpool,
    isa.AvgPool1D: _avgpool, isa.AvgPool2D: _avgpool, isa.AvgPool3D: _avgpool,
    isa.BatchNorm: _batch_norm, isa.LayerNorm: _layer_norm, isa.Dropout: _dropout, isa.Embedding: _embedding,
    isa.LSTM: _lstm, isa.Attention: _attention,
    isa.ReLU: _simple(torch.relu), isa.GELU: _gelu, isa.Sigmoid: _simple(torch.sigmoid),
    isa.Tanh: _simple(torch.tanh), isa.SiLU: _simple(F.silu), isa.Softsign: _simple(F.softsign),
    isa.SELU: _simple(torch.selu), isa.LeakyReLU: _leaky, isa.ELU: _elu, isa.Softplus: _softplus,
    isa.HardSigmoid: _hard_sigmoid, isa.Softmax: _softmax, isa.LogSoftmax: _log_softmax, isa.PReLU: _prelu,
    isa.CrossEntropyLoss: _cross_entropy, isa.MSELoss: _mse, isa.Backward: _backward,
    isa.SGDStep: _sgd_step, isa.AdamStep: _adam_step, isa.PythonExecute: _python_execute,
}
assert set(_FACTORIES) == set(isa.INSTRUCTIONS.values()), "every instruction needs a kernel"
