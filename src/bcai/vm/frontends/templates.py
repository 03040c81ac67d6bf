"""BML model templates (MLP, CNN, LSTM, Transformer) as model functions for the builder.

Each template returns `model(builder, x, training) -> logits id`. Parameters are created
with PyTorch's default initialisation for the matching torch.nn layer (drawn from the
program's seeded generator), so a BML model trains like its torch.nn twin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bcai.vm import isa
from bcai.vm.frontends.builder import ProgramBuilder, linear_bound

ACTIVATIONS = {"relu": isa.ReLU, "gelu": isa.GELU, "tanh": isa.Tanh, "sigmoid": isa.Sigmoid, "silu": isa.SiLU}


def linear(b: ProgramBuilder, name: str, x: str, n_in: int, n_out: int) -> str:
    bound = linear_bound(n_in)
    w = b.uniform_param(f"{name}.weight", (n_out, n_in), bound)
    bias = b.uniform_param(f"{name}.bias", (n_out,), bound)
    out = b.fresh(name)
    b.emit(isa.Linear(x, w, bias, out))
    return out


def activation(b: ProgramBuilder, kind: str, x: str) -> str:
    out = b.fresh(kind)
    b.emit(ACTIVATIONS[kind](x, out))
    return out


def dropout(b: ProgramBuilder, x: str, p: float, training: bool) -> str:
    if p <= 0 or not training:
        return x
    out = b.fresh("dropout")
    b.emit(isa.Dropout(x, out, p, training=True))
    return out


def batch_norm(b: ProgramBuilder, name: str, x: str, channels: int, training: bool) -> str:
    w = b.param(f"{name}.weight", (channels,), "ones")
    bias = b.param(f"{name}.bias", (channels,))
    rm = b.buffer(f"{name}.running_mean", (channels,))
    rv = b.buffer(f"{name}.running_var", (channels,), "ones")
    out = b.fresh(name)
    b.emit(isa.BatchNorm(x, w, bias, rm, rv, out, training=training))
    return out


def layer_norm(b: ProgramBuilder, name: str, x: str, dim: int) -> str:
    w = b.param(f"{name}.weight", (dim,), "ones")
    bias = b.param(f"{name}.bias", (dim,))
    out = b.fresh(name)
    b.emit(isa.LayerNorm(x, w, bias, out))
    return out


def add(b: ProgramBuilder, x: str, y: str) -> str:
    out = b.fresh("add")
    b.emit(isa.TensorOp("add", (x, y), out))
    return out


@dataclass(frozen=True)
class MLP:
    input_shape: tuple[int, ...]
    hidden: tuple[int, ...]
    num_classes: int
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    def __call__(self, b: ProgramBuilder, x: str, training: bool) -> str:
        h = x
        if len(self.input_shape) > 1:
            h = b.fresh("flat")
            b.emit(isa.Flatten(x, h))
        width = math.prod(self.input_shape)
        for k, size in enumerate(self.hidden):
            h = linear(b, f"fc{k}", h, width, size)
            if self.batch_norm:
                h = batch_norm(b, f"bn{k}", h, size, training)
            h = activation(b, self.activation, h)
            h = dropout(b, h, self.dropout, training)
            width = size
        return linear(b, "head", h, width, self.num_classes)


@dataclass(frozen=True)
class CNN:
    input_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    hidden: tuple[int, ...]
    num_classes: int
    kernel_size: int = 3
    pool: int = 2
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False

    def __call__(self, b: ProgramBuilder, x: str, training: bool) -> str:
        c, hgt, wid = self.input_shape
        h, k = x, self.kernel_size
        for i, out_c in enumerate(self.channels):
            bound = linear_bound(c * k * k)
            w = b.uniform_param(f"conv{i}.weight", (out_c, c, k, k), bound)
            bias = b.uniform_param(f"conv{i}.bias", (out_c,), bound)
            out = b.fresh(f"conv{i}")
            b.emit(isa.Conv2D(h, w, bias, out, padding=(k // 2, k // 2)))
            h = out
            if self.batch_norm:
                h = batch_norm(b, f"cbn{i}", h, out_c, training)
            h = activation(b, self.activation, h)
            if self.pool > 1:
                out = b.fresh("pool")
                b.emit(isa.MaxPool2D(h, out, kernel=(self.pool, self.pool)))
                h = out
                hgt, wid = hgt // self.pool, wid // self.pool
            c = out_c
        flat = b.fresh("flat")
        b.emit(isa.Flatten(h, flat))
        h, width = flat, c * hgt * wid
        for i, size in enumerate(self.hidden):
            h = activation(b, self.activation, linear(b, f"fc{i}", h, width, size))
            h = dropout(b, h, self.dropout, training)
            width = size
        return linear(b, "head", h, width, self.num_classes)


@dataclass(frozen=True)
class LSTMClassifier:
    input_shape: tuple[int, int]  # (time steps, features)
    hidden_size: int
    num_classes: int
    num_layers: int = 1
    bidirectional: bool = False

    def __call__(self, b: ProgramBuilder, x: str, training: bool) -> str:
        steps, features = self.input_shape
        hs, dirs = self.hidden_size, 2 if self.bidirectional else 1
        bound = 1.0 / math.sqrt(hs)
        weights = []
        for layer in range(self.num_layers):
            size_in = features if layer == 0 else dirs * hs
            for suffix in ("", "_reverse")[:dirs]:
                for name, shape in ((f"weight_ih_l{layer}{suffix}", (4 * hs, size_in)),
                                    (f"weight_hh_l{layer}{suffix}", (4 * hs, hs)),
                                    (f"bias_ih_l{layer}{suffix}", (4 * hs,)),
                                    (f"bias_hh_l{layer}{suffix}", (4 * hs,))):
                    weights.append(b.uniform_param(f"lstm.{name}", shape, bound))
        seq = b.fresh("lstm")
        b.emit(isa.LSTM(x, tuple(weights), seq, hs, self.num_layers, self.bidirectional, batch_first=True))
        last = b.fresh("last")
        b.emit(isa.Slice(seq, last, axes=(1,), starts=(steps - 1,), ends=(steps,)))
        flat = b.fresh("flat")
        b.emit(isa.Flatten(last, flat))
        return linear(b, "head", flat, dirs * hs, self.num_classes)


@dataclass(frozen=True)
class Transformer:
    input_shape: tuple[int, ...]  # (tokens,) with vocab_size, or (tokens, features)
    embed_dim: int
    num_heads: int
    num_layers: int
    ff_dim: int
    num_classes: int
    vocab_size: int | None = None
    dropout: float = 0.0
    activation: str = "relu"
    causal: bool = False

    def __call__(self, b: ProgramBuilder, x: str, training: bool) -> str:
        e, steps = self.embed_dim, self.input_shape[0]
        if self.vocab_size is not None:
            table = b.param("embed.weight", (self.vocab_size, e), "normal", 0.0, 1.0)
            h = b.fresh("embed")
            b.emit(isa.Embedding(x, table, h))
        else:
            h = linear(b, "proj", x, self.input_shape[1], e)
        pos = b.param("pos.weight", (steps, e), "normal", 0.0, 0.02)
        h = add(b, h, pos)
        for i in range(self.num_layers):
            name = f"layer{i}"
            in_bound = math.sqrt(6.0 / (e + 3 * e))
            w_in = b.uniform_param(f"{name}.attn.in_proj_weight", (3 * e, e), in_bound)
            b_in = b.param(f"{name}.attn.in_proj_bias", (3 * e,))
            w_out = b.uniform_param(f"{name}.attn.out_proj.weight", (e, e), linear_bound(e))
            b_out = b.param(f"{name}.attn.out_proj.bias", (e,))
            att = b.fresh("attn")
            b.emit(isa.Attention(h, h, h, w_in, b_in, w_out, b_out, att, e, self.num_heads, self.causal))
            h = layer_norm(b, f"{name}.norm1", add(b, h, dropout(b, att, self.dropout, training)), e)
            ff = linear(b, f"{name}.linear1", h, e, self.ff_dim)
            ff = dropout(b, activation(b, self.activation, ff), self.dropout, training)
            ff = linear(b, f"{name}.linear2", ff, self.ff_dim, e)
            h = layer_norm(b, f"{name}.norm2", add(b, h, dropout(b, ff, self.dropout, training)), e)
        pooled = b.fresh("pool")
        b.emit(isa.TensorOp("mean", (h,), pooled, dims=(1,)))
        return linear(b, "head", pooled, e, self.num_classes)


TEMPLATES: dict[str, type] = {"mlp": MLP, "cnn": CNN, "lstm": LSTMClassifier, "transformer": Transformer}
