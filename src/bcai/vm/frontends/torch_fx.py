"""torch front end: `compile_torch(module, example_inputs)` through torch.fx.

The module is traced symbolically; every graph node maps onto instructions, parameters
and buffers become `TensorCreate(init="data")` with the module's current values (raw
bytes). `torch.nn.Linear(784, 10)` compiles to two `TensorCreate`s and one `Linear`.
Nodes the VM cannot express are all collected first and reported in one
`UnsupportedOperators` error.

With `loss=` (and `optimizer=`), the result is a training program with `forward`,
`train_step` and `evaluate` entries (`frontends/builder.py`); otherwise one `forward`
entry. The first dimension of every input is dynamic (the batch). A single input is named
`x` and a single output `y`; several keep the names of the forward arguments.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from bcai.errors import InvalidModel, UnsupportedOperators
from bcai.vm import isa
from bcai.vm.frontends.builder import OptimizerConfig, ProgramBuilder, build_training_program
from bcai.vm.kernels import DTYPE_NAMES, tensor_to_bytes
from bcai.vm.program import Entry, Limits, Program

Value = Any  # a tensor id (str), a Python scalar, or a tuple of values

_SIMPLE_MODULES: dict[type, Callable[[Any, str, str], isa.Instruction]] = {
    nn.ReLU: lambda m, x, o: isa.ReLU(x, o),
    nn.GELU: lambda m, x, o: isa.GELU(x, o, m.approximate),
    nn.Sigmoid: lambda m, x, o: isa.Sigmoid(x, o),
    nn.Tanh: lambda m, x, o: isa.Tanh(x, o),
    nn.SiLU: lambda m, x, o: isa.SiLU(x, o),
    nn.Softsign: lambda m, x, o: isa.Softsign(x, o),
    nn.SELU: lambda m, x, o: isa.SELU(x, o),
    nn.LeakyReLU: lambda m, x, o: isa.LeakyReLU(x, o, m.negative_slope),
    nn.ELU: lambda m, x, o: isa.ELU(x, o, m.alpha),
    nn.Softplus: lambda m, x, o: isa.Softplus(x, o, m.beta, m.threshold),
    nn.Softmax: lambda m, x, o: isa.Softmax(x, o, -1 if m.dim is None else m.dim),
    nn.LogSoftmax: lambda m, x, o: isa.LogSoftmax(x, o, -1 if m.dim is None else m.dim),
    nn.Flatten: lambda m, x, o: isa.Flatten(x, o, m.start_dim, m.end_dim),
}
_CONV = {nn.Conv1d: isa.Conv1D, nn.Conv2d: isa.Conv2D, nn.Conv3d: isa.Conv3D}
_CONV_T = {nn.ConvTranspose1d: isa.ConvTranspose1D, nn.ConvTranspose2d: isa.ConvTranspose2D,
           nn.ConvTranspose3d: isa.ConvTranspose3D}
_MAXPOOL = {nn.MaxPool1d: (isa.MaxPool1D, 1), nn.MaxPool2d: (isa.MaxPool2D, 2), nn.MaxPool3d: (isa.MaxPool3D, 3)}
_AVGPOOL = {nn.AvgPool1d: (isa.AvgPool1D, 1), nn.AvgPool2d: (isa.AvgPool2D, 2), nn.AvgPool3d: (isa.AvgPool3D, 3)}
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_UNARY_FUNCS: dict[Any, Callable[[str, str], isa.Instruction]] = {
    torch.relu: isa.ReLU, F.relu: isa.ReLU, torch.sigmoid: isa.Sigmoid, F.sigmoid: isa.Sigmoid,
    torch.tanh: isa.Tanh, F.tanh: isa.Tanh, F.gelu: isa.GELU, F.silu: isa.SiLU,
    torch.exp: lambda x, o: isa.TensorOp("exp", (x,), o), torch.log: lambda x, o: isa.TensorOp("log", (x,), o),
    torch.neg: lambda x, o: isa.TensorOp("neg", (x,), o), operator.neg: lambda x, o: isa.TensorOp("neg", (x,), o),
    torch.sqrt: lambda x, o: isa.TensorOp("sqrt", (x,), o), torch.abs: lambda x, o: isa.TensorOp("abs", (x,), o),
}
_BINARY_FUNCS = {operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub",
                 operator.mul: "mul", torch.mul: "mul", operator.truediv: "div", torch.div: "div",
                 operator.matmul: "matmul", torch.matmul: "matmul", torch.pow: "pow", operator.pow: "pow"}
_UNARY_METHODS = {"relu": isa.ReLU, "sigmoid": isa.Sigmoid, "tanh": isa.Tanh,
                  "exp": lambda x, o: isa.TensorOp("exp", (x,), o), "neg": lambda x, o: isa.TensorOp("neg", (x,), o)}


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _Lowering:
    """Emits instructions for one traced graph into a builder (twice for training programs)."""

    def __init__(self, gm: torch.fx.GraphModule, prefix_inputs: Sequence[str]) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.input_names = list(prefix_inputs)

    def find_unsupported(self) -> list[str]:
        bad = []
        for node in self.gm.graph.nodes:
            if node.op == "call_module":
                mod = self.modules[node.target]
                if not self._module_supported(mod):
                    bad.append(f"module {type(mod).__name__} ({node.target})")
            elif node.op == "call_function":
                fn = node.target
                if fn not in _UNARY_FUNCS and fn not in _BINARY_FUNCS and fn not in (
                        operator.getitem, torch.flatten, torch.cat, F.softmax, F.log_softmax, torch.softmax,
                        torch.log_softmax, F.linear):
                    bad.append(f"function {getattr(fn, '__name__', fn)}")
            elif node.op == "call_method":
                if node.target not in _UNARY_METHODS and node.target not in (
                        "view", "reshape", "flatten", "permute", "transpose", "unsqueeze", "squeeze",
                        "contiguous", "mean", "sum", "softmax", "size"):
                    bad.append(f"method Tensor.{node.target}")
        return sorted(set(bad))

    @staticmethod
    def _module_supported(mod: Any) -> bool:
        t = type(mod)
        if t in _SIMPLE_MODULES or t in _MAXPOOL or t in _AVGPOOL or t in (nn.Identity, nn.Dropout):
            return True
        if t is nn.Linear or t is nn.Embedding or t is nn.LayerNorm:
            return True
        if t in _CONV or t in _CONV_T:
            return isinstance(mod.padding, tuple) and mod.padding_mode == "zeros"
        if t in _BN:
            return mod.track_running_stats
        if t is nn.LSTM:
            return mod.proj_size == 0 and mod.dropout == 0
        if t is nn.MultiheadAttention:
            return mod.batch_first and mod._qkv_same_embed_dim
        return False

    def state(self, b: ProgramBuilder, name: str, tensor: torch.Tensor, trainable: bool) -> str:
        data = tensor_to_bytes(tensor)
        dtype = DTYPE_NAMES[tensor.dtype]
        if trainable:
            return b.param(name, tuple(tensor.shape), "data", data=data, dtype=dtype)
        return b.buffer(name, tuple(tensor.shape), "data", data=data, dtype=dtype)

    def module_state(self, b: ProgramBuilder, target: str, attr: str) -> Any:
        mod = self.modules[target]
        t = getattr(mod, attr, None)
        if t is None:
            return None
        name = f"{target}.{attr}" if target else attr
        return self.state(b, name, t.detach(), isinstance(t, nn.Parameter) and t.requires_grad)

    def emit(self, b: ProgramBuilder, inputs: Sequence[str], training: bool) -> tuple[str, ...]:
        env: dict[str, Value] = {}
        placeholders = iter(inputs)
        result: tuple[str, ...] = ()
        for node in self.gm.graph.nodes:
            args = torch.fx.node.map_arg(node.args, lambda n: env[n.name])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n.name])
            if node.op == "placeholder":
                env[node.name] = next(placeholders)
            elif node.op == "get_attr":
                owner, _, attr = node.target.rpartition(".")
                env[node.name] = self.module_state(b, owner, attr)
            elif node.op == "call_module":
                env[node.name] = self.call_module(b, node.target, args, kwargs, training)
            elif node.op == "call_function":
                env[node.name] = self.call_function(b, node.target, args, kwargs)
            elif node.op == "call_method":
                env[node.name] = self.call_method(b, node.target, args, kwargs)
            elif node.op == "output":
                out = args[0]
                result = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if not all(isinstance(r, str) for r in result):
            raise InvalidModel("the module must return a tensor or a tuple of tensors")
        return result

    def _out(self, b: ProgramBuilder, instr_fn: Callable[[str], isa.Instruction], prefix: str) -> str:
        out = b.fresh(prefix)
        b.emit(instr_fn(out))
        return out

    def call_module(self, b: ProgramBuilder, target: str, args: tuple, kwargs: dict, training: bool) -> Value:
        mod: Any = self.modules[target]
        x = args[0]
        t = type(mod)
        st = lambda attr: self.module_state(b, target, attr)  # noqa: E731
        name = target.replace(".", "_")
        if t in _SIMPLE_MODULES:
            return self._out(b, lambda o: _SIMPLE_MODULES[t](mod, x, o), name)
        if t is nn.Identity or (t is nn.Dropout and (not training or mod.p == 0)):
            return x
        if t is nn.Dropout:
            return self._out(b, lambda o: isa.Dropout(x, o, mod.p, True), name)
        if t is nn.Linear:
            w, bias = st("weight"), st("bias")
            return self._out(b, lambda o: isa.Linear(x, w, bias, o), name)
        if t in _CONV:
            w, bias, nd = st("weight"), st("bias"), len(mod.kernel_size)
            return self._out(b, lambda o: _CONV[t](x, w, bias, o, _tuple(mod.stride, nd), _tuple(mod.padding, nd),
                                                   _tuple(mod.dilation, nd), mod.groups), name)
        if t in _CONV_T:
            w, bias, nd = st("weight"), st("bias"), len(mod.kernel_size)
            return self._out(b, lambda o: _CONV_T[t](x, w, bias, o, _tuple(mod.stride, nd), _tuple(mod.padding, nd),
                                                     _tuple(mod.dilation, nd), mod.groups,
                                                     _tuple(mod.output_padding, nd)), name)
        if t in _MAXPOOL:
            cls, nd = _MAXPOOL[t]
            stride = mod.stride if mod.stride is not None else mod.kernel_size
            return self._out(b, lambda o: cls(x, o, _tuple(mod.kernel_size, nd), _tuple(stride, nd),
                                              _tuple(mod.padding, nd), mod.ceil_mode, _tuple(mod.dilation, nd)), name)
        if t in _AVGPOOL:
            cls, nd = _AVGPOOL[t]
            stride = mod.stride if mod.stride is not None else mod.kernel_size
            return self._out(b, lambda o: cls(x, o, _tuple(mod.kernel_size, nd), _tuple(stride, nd),
                                              _tuple(mod.padding, nd), mod.ceil_mode, mod.count_include_pad), name)
        if t in _BN:
            w, bias, rm, rv = st("weight"), st("bias"), st("running_mean"), st("running_var")
            momentum = 0.1 if mod.momentum is None else mod.momentum
            return self._out(b, lambda o: isa.BatchNorm(x, w, bias, rm, rv, o, training, momentum, mod.eps), name)
        if t is nn.LayerNorm:
            w, bias = st("weight"), st("bias")
            return self._out(b, lambda o: isa.LayerNorm(x, w, bias, o, len(mod.normalized_shape), mod.eps), name)
        if t is nn.Embedding:
            w = st("weight")
            return self._out(b, lambda o: isa.Embedding(x, w, o, mod.padding_idx), name)
        if t is nn.LSTM:
            weights = tuple(self.module_state(b, target, n) for n in mod._flat_weights_names)
            h0c0 = args[1] if len(args) > 1 else None
            h0, c0 = (h0c0[0], h0c0[1]) if h0c0 is not None else (None, None)
            out, h, c = b.fresh(name), b.fresh(f"{name}_h"), b.fresh(f"{name}_c")
            b.emit(isa.LSTM(x, weights, out, mod.hidden_size, mod.num_layers, mod.bidirectional, mod.batch_first,
                            mod.bias, h0, c0, h, c))
            return (out, (h, c))
        if t is nn.MultiheadAttention:
            q: Any = args[0]
            k: Any = args[1] if len(args) > 1 else kwargs.get("key")
            v: Any = args[2] if len(args) > 2 else kwargs.get("value")
            if kwargs.get("attn_mask") is not None or kwargs.get("key_padding_mask") is not None:
                raise UnsupportedOperators("MultiheadAttention masks are not supported (use causal in BML)")
            w_in, b_in = st("in_proj_weight"), st("in_proj_bias")
            w_out = self.module_state(b, f"{target}.out_proj", "weight")
            b_out = self.module_state(b, f"{target}.out_proj", "bias")
            out = self._out(b, lambda o: isa.Attention(q, k, v, w_in, b_in, w_out, b_out, o, mod.embed_dim,
                                                       mod.num_heads), name)
            return (out, None)
        raise UnsupportedOperators(f"module {t.__name__}")

    def _binary(self, b: ProgramBuilder, op: str, x: Value, y: Value) -> str:
        if isinstance(x, str) and isinstance(y, str):
            return self._out(b, lambda o: isa.TensorOp(op, (x, y), o), op)
        if isinstance(x, str) and isinstance(y, (int, float)):
            return self._out(b, lambda o: isa.TensorOp(op, (x,), o, value=y), op)
        if isinstance(y, str) and isinstance(x, (int, float)) and op in ("add", "mul"):
            return self._out(b, lambda o: isa.TensorOp(op, (y,), o, value=x), op)
        if isinstance(y, str) and isinstance(x, (int, float)) and op == "sub":
            neg = self._out(b, lambda o: isa.TensorOp("neg", (y,), o), "neg")
            return self._out(b, lambda o: isa.TensorOp("add", (neg,), o, value=x), op)
        raise UnsupportedOperators(f"{op} of {type(x).__name__} and {type(y).__name__}")

    def call_function(self, b: ProgramBuilder, fn: Any, args: tuple, kwargs: dict) -> Value:
        if fn is operator.getitem:
            seq, index = args
            if isinstance(seq, tuple):
                return seq[index]
            raise UnsupportedOperators("tensor indexing (x[...]) is not supported; use Flatten/Slice")
        if fn is F.linear:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return self._out(b, lambda o: isa.Linear(args[0], args[1], bias, o), "linear")
        if fn in _UNARY_FUNCS:
            return self._out(b, lambda o: _UNARY_FUNCS[fn](args[0], o), "f")
        if fn in _BINARY_FUNCS:
            return self._binary(b, _BINARY_FUNCS[fn], args[0], args[1])
        if fn is torch.flatten:
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            return self._out(b, lambda o: isa.Flatten(args[0], o, start, end), "flatten")
        if fn is torch.cat:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            return self._out(b, lambda o: isa.TensorOp("concat", tuple(args[0]), o, dims=(dim,)), "cat")
        if fn in (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax):
            dim = args[1] if len(args) > 1 else kwargs.get("dim", -1)
            cls = isa.LogSoftmax if fn in (F.log_softmax, torch.log_softmax) else isa.Softmax
            return self._out(b, lambda o: cls(args[0], o, dim), "softmax")
        raise UnsupportedOperators(f"function {getattr(fn, '__name__', fn)}")

    def call_method(self, b: ProgramBuilder, method: str, args: tuple, kwargs: dict) -> Value:
        x = args[0]
        if method == "size":
            return ("size", x, args[1] if len(args) > 1 else None)
        if method in _UNARY_METHODS:
            return self._out(b, lambda o: _UNARY_METHODS[method](x, o), method)
        if method == "contiguous":
            return x
        if method in ("view", "reshape"):
            dims = args[1:] if len(args) > 2 or not isinstance(args[1], (tuple, list)) else tuple(args[1])
            # x.size(0) (the batch) becomes 0: "copy the input's size here" (reshape's ONNX rule).
            shape = tuple(0 if isinstance(d, tuple) and d[:1] == ("size",) and d[2] == 0 and k == 0 else d
                          for k, d in enumerate(dims))
            if not all(isinstance(d, int) and d != 0 or k == 0 and d == 0 for k, d in enumerate(shape)):
                raise UnsupportedOperators("reshape with computed sizes other than x.size(0) in front")
            return self._out(b, lambda o: isa.TensorOp("reshape", (x,), o, dims=shape), "reshape")
        if method == "flatten":
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            return self._out(b, lambda o: isa.Flatten(x, o, start, args[2] if len(args) > 2 else -1), "flatten")
        if method == "permute":
            dims = tuple(args[1]) if isinstance(args[1], (tuple, list)) else tuple(args[1:])
            return self._out(b, lambda o: isa.TensorOp("permute", (x,), o, dims=dims), "permute")
        if method == "transpose":
            return self._out(b, lambda o: isa.TensorOp("transpose", (x,), o, dims=(args[1], args[2])), "transpose")
        if method in ("unsqueeze", "squeeze"):
            dims = (args[1],) if len(args) > 1 else ()
            return self._out(b, lambda o: isa.TensorOp(method, (x,), o, dims=dims), method)
        if method in ("mean", "sum"):
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            dims = () if dim is None else tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
            keep = kwargs.get("keepdim", False)
            return self._out(b, lambda o: isa.TensorOp(method, (x,), o, dims=dims, keepdim=keep), method)
        if method == "softmax":
            dim = args[1] if len(args) > 1 else kwargs.get("dim", -1)
            return self._out(b, lambda o: isa.Softmax(x, o, dim), "softmax")
        raise UnsupportedOperators(f"method Tensor.{method}")


def compile_torch(module: nn.Module, example_inputs: Sequence[torch.Tensor] | torch.Tensor, *,
                  loss: str | None = None, optimizer: OptimizerConfig | None = None, seed: int = 0,
                  epochs: int = 1, batch_size: int = 32, limits: Limits | None = None) -> Program:
    """Compile `module` (traced with torch.fx) into a program (see module docstring)."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if type(module) in _CONV or type(module) in _CONV_T or type(module) in _BN or type(module) in (
            nn.LSTM, nn.MultiheadAttention, nn.LayerNorm, nn.Embedding):
        module = nn.Sequential(module)  # trace a bare layer as one module call, not its internals
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many kinds (TraceError, TypeError on control flow...)
        raise InvalidModel(f"torch.fx cannot trace {type(module).__name__}: {exc}") from None
    placeholders = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) == 1:
        placeholders = ["x"]  # a single input is always called x (the BML / training convention)
    if len(placeholders) != len(example_inputs):
        raise InvalidModel(f"the module takes {len(placeholders)} inputs, {len(example_inputs)} examples given")
    lowering = _Lowering(gm, placeholders)
    unsupported = lowering.find_unsupported()
    if unsupported:
        raise UnsupportedOperators(f"{type(module).__name__} uses what the VM cannot express: {'; '.join(unsupported)}")
    specs = tuple(isa.TensorSpec(name, (-1, *t.shape[1:]), DTYPE_NAMES[t.dtype])
                  for name, t in zip(placeholders, example_inputs))
    b = ProgramBuilder()
    if loss is None:
        outputs = lowering.emit(b, placeholders, training=False)
        if len(outputs) == 1:
            outputs = (b.name_output(outputs[0], "y"),)
        program = Program(init=tuple(b.init), entries=(Entry("forward", specs, b.take_body(), outputs),),
                          parameters=tuple(b.parameters), buffers=tuple(b.buffers), limits=limits or Limits(),
                          seed=seed)
    else:
        if len(specs) != 1:
            raise InvalidModel("a training program needs a module with exactly one input")
        was_training = module.training
        module.eval()  # probe the output size without touching batch-norm statistics
        try:
            with torch.no_grad():
                sample = module(*example_inputs)
        finally:
            module.train(was_training)
        if not isinstance(sample, torch.Tensor) or sample.dim() != 2:
            raise InvalidModel("a training program needs a module returning (batch, outputs)")

        def model(builder: ProgramBuilder, x: str, training: bool) -> str:
            return lowering.emit(builder, [x], training)[0]

        program = build_training_program(model, specs[0], num_outputs=sample.shape[1], loss=loss,
                                         optimizer=optimizer or OptimizerConfig(), seed=seed, limits=limits,
                                         epochs=epochs, batch_size=batch_size, builder=b)
    return program
