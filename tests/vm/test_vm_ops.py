"""Every instruction against its torch.nn / torch.nn.functional reference: forward values
and gradients, over Hypothesis-drawn shapes, in float32 and float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_harness import TOLERANCES, reference_grads, run_instruction

from bcai.errors import DtypeMismatch, ExecutionFailed, MalformedProgram, ShapeMismatch
from bcai.vm import isa

SETTINGS = settings(max_examples=4, deadline=None, derandomize=True)
DTYPES = [torch.float32, torch.float64]
dims = st.integers(1, 4)


def _randn(data: st.DataObject, shape: tuple[int, ...], dtype: torch.dtype, positive: bool = False) -> torch.Tensor:
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=dtype)
    return t.abs() + 0.5 if positive else t


def check(instr: isa.Instruction, inputs: dict[str, torch.Tensor], reference, outputs=("out",),
          wrt: tuple[str, ...] | None = None, data: st.DataObject | None = None) -> None:
    """Compare VM outputs and gradients of `instr` with `reference(**leaf tensors)`."""
    dtype = next(t.dtype for t in inputs.values() if t.is_floating_point())
    wrt = tuple(n for n, t in inputs.items() if t.is_floating_point()) if wrt is None else wrt
    leaves = {n: t.clone().requires_grad_(n in wrt) for n, t in inputs.items()}
    ref = reference(**leaves)
    ref = ref if isinstance(ref, tuple) else (ref,)
    ref_out = dict(zip(outputs, ref))
    grad_outs = {n: t for n, t in ref_out.items() if t.is_floating_point() and t.requires_grad}
    cot = {n: torch.randn(t.shape, dtype=t.dtype, generator=torch.Generator().manual_seed(7)) for n, t in grad_outs.items()}
    got, grads, _ = run_instruction(instr, inputs, outputs, wrt if cot else (), cot or None)
    for name in outputs:
        assert got[name].shape == ref_out[name].shape, name
        torch.testing.assert_close(got[name], ref_out[name].detach(), **TOLERANCES[dtype])
    if cot:
        ref_g = reference_grads(ref_out, cot, {n: leaves[n] for n in wrt})
        for name in wrt:
            torch.testing.assert_close(grads[name], ref_g[name], **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow"])
@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3))
def test_binary_ops(dtype, op, data, shape):
    a = _randn(data, tuple(shape), dtype, positive=op == "pow")
    b = _randn(data, tuple(shape[-1:]), dtype, positive=op in ("div", "pow"))  # broadcasting
    fn = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum,
          "minimum": torch.minimum, "pow": torch.pow}[op]
    check(isa.TensorOp(op, ("a", "b"), "out"), {"a": a, "b": b}, lambda a, b: fn(a, b))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_binary_ops_with_scalar(op):
    a = torch.rand(3, 4, dtype=torch.float64) + 0.5
    fn = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow}[op]
    check(isa.TensorOp(op, ("a",), "out", value="1.5"), {"a": a}, lambda a: fn(a, 1.5))


def test_integer_division_truncates_and_integral_scalars_keep_integers():
    a = torch.tensor([-7, 7, -7, 7, 0], dtype=torch.int32)
    b = torch.tensor([2, 2, -2, -2, 3], dtype=torch.int32)
    got, _, _ = run_instruction(isa.TensorOp("div_trunc", ("a", "b"), "out"), {"a": a, "b": b}, ["out"])
    assert got["out"].dtype == torch.int32 and got["out"].tolist() == [-3, 3, 3, -3, 0]
    got, _, _ = run_instruction(isa.TensorOp("add", ("a",), "out", value="2.0"), {"a": a}, ["out"])
    assert got["out"].dtype == torch.int32 and got["out"].tolist() == [-5, 9, -5, 9, 2]
    got, _, _ = run_instruction(isa.TensorOp("add", ("a",), "out", value="0.5"), {"a": a}, ["out"])
    assert got["out"].dtype == torch.float32 and got["out"].tolist() == [-6.5, 7.5, -6.5, 7.5, 0.5]
    x = torch.tensor([-1.5, 2.5], dtype=torch.float64)
    check(isa.TensorOp("div_trunc", ("x", "y"), "out"), {"x": x, "y": torch.tensor([1.0, 2.0], dtype=torch.float64)},
          lambda x, y: torch.div(x, y, rounding_mode="trunc"), wrt=())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["neg", "exp", "log", "sqrt", "abs", "erf", "reciprocal"])
@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3))
def test_unary_ops(dtype, op, data, shape):
    x = _randn(data, tuple(shape), dtype, positive=op in ("log", "sqrt", "reciprocal"))
    check(isa.TensorOp(op, ("x",), "out"), {"x": x}, lambda x: getattr(torch, op)(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", isa.FLOAT_UNARY_OPS)
@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3))
def test_trigonometric_and_hyperbolic_ops(dtype, op, data, shape):
    x = torch.tanh(_randn(data, tuple(shape), dtype)) * 0.9  # inside (-1, 1): asin, acos, atanh are defined
    if op == "acosh":
        x = x.abs() + 1.5
    check(isa.TensorOp(op, ("x",), "out"), {"x": x}, lambda x: getattr(torch, op)(x))


def test_rounding_nan_inf_and_logical_unary_ops():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, float("nan"), float("inf"), -float("inf")], dtype=torch.float64)
    got = {op: run_instruction(isa.TensorOp(op, ("x",), "out"), {"x": x}, ["out"])[0]["out"]
           for op in ("round", "isnan", "isinf")}
    assert got["round"][:6].tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 2.0]  # half to even
    assert got["isnan"].tolist() == [False] * 6 + [True, False, False]
    assert got["isinf"].tolist() == [False] * 7 + [True, True]
    b = torch.tensor([True, False])
    assert run_instruction(isa.TensorOp("logical_not", ("b",), "out"), {"b": b}, ["out"])[0]["out"].tolist() == [False, True]
    i = torch.tensor([0, 5, -1], dtype=torch.int8)
    out = run_instruction(isa.TensorOp("bitwise_not", ("i",), "out"), {"i": i}, ["out"])[0]["out"]
    assert out.dtype == torch.int8 and out.tolist() == [-1, -6, 0]


def test_comparison_mod_logical_bitwise_and_shift_ops():
    a = torch.tensor([-7, 7, -7, 7, 0, 3], dtype=torch.int16)
    b = torch.tensor([2, -2, -2, 2, 3, 3], dtype=torch.int16)

    def run(op, x, y):
        return run_instruction(isa.TensorOp(op, ("x", "y"), "out"), {"x": x, "y": y}, ["out"])[0]["out"]

    assert run("mod", a, b).tolist() == [1, -1, -1, 1, 0, 0]  # the divisor's sign (Python %)
    assert run("fmod", a, b).tolist() == [-1, 1, -1, 1, 0, 0]  # the dividend's sign (C fmod)
    assert run("le", a, b).tolist() == [True, False, True, False, True, True]
    assert run("ge", a, b).tolist() == [False, True, False, True, False, True]
    zeros = torch.tensor([0.0, -0.0, 5.5, -5.5], dtype=torch.float64)
    divisors = torch.tensor([-2.0, 2.0, -2.0, 2.0], dtype=torch.float64)
    got = run("mod", zeros, divisors)
    assert got.tolist() == [-0.0, 0.0, -0.5, 0.5] and torch.signbit(got).tolist() == [True, False, True, False]
    p, q = torch.tensor([True, True, False, False]), torch.tensor([True, False, True, False])
    assert run("logical_and", p, q).tolist() == [True, False, False, False]
    assert run("logical_or", p, q).tolist() == [True, True, True, False]
    assert run("logical_xor", p, q).tolist() == [False, True, True, False]
    u, v = torch.tensor([0b1100, 0b1010, 255], dtype=torch.uint8), torch.tensor([0b1010, 1, 9], dtype=torch.uint8)
    assert run("bitwise_and", u, v).tolist() == [0b1000, 0, 9]
    assert run("bitwise_or", u, v).tolist() == [0b1110, 0b1011, 255]
    assert run("bitwise_xor", u, v).tolist() == [0b0110, 0b1011, 246]
    assert run("shift_left", u, v).tolist() == [0, 0b10100, 0]  # bits shifted past the width are gone
    assert run("shift_right", u, v).tolist() == [0, 0b101, 0]


def test_cumsum_cumprod_triu_tril_gather_elements_logsumexp():
    x = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    got = run_instruction(isa.TensorOp("cumsum", ("x",), "out", dims=(1,)), {"x": x}, ["out"])[0]["out"]
    assert got.dtype == torch.int32 and torch.equal(got, torch.cumsum(x, 1).int())  # not widened to int64
    got = run_instruction(isa.TensorOp("cumprod", ("x",), "out", dims=(0,)), {"x": x}, ["out"])[0]["out"]
    assert got.dtype == torch.int32 and torch.equal(got, torch.cumprod(x, 0).int())
    f = torch.randn(3, 4, 5, dtype=torch.float64)
    check(isa.TensorOp("cumsum", ("f",), "out", dims=(-1,)), {"f": f}, lambda f: torch.cumsum(f, -1))
    check(isa.TensorOp("cumprod", ("f",), "out", dims=(1,)), {"f": f}, lambda f: torch.cumprod(f, 1))
    for op, k in (("triu", 1), ("tril", -1), ("triu", -7), ("tril", 2**62)):
        check(isa.TensorOp(op, ("f",), "out", dims=(k,)), {"f": f}, lambda f: getattr(torch, op)(f, k))
    idx = torch.tensor([[[0, -1], [4, 2]]])
    check(isa.TensorOp("gather_elements", ("f", "idx"), "out", dims=(2,)), {"f": f, "idx": idx},
          lambda f, idx: torch.gather(f, 2, torch.tensor([[[0, 4], [4, 2]]])), wrt=("f",))
    check(isa.TensorOp("logsumexp", ("f",), "out", dims=(0, 2), keepdim=True), {"f": f},
          lambda f: torch.logsumexp(f, (0, 2), keepdim=True))
    check(isa.TensorOp("logsumexp", ("f",), "out"), {"f": f}, lambda f: torch.logsumexp(f, (0, 1, 2)))
    empty = torch.zeros(0, 3, dtype=torch.float64)
    got = run_instruction(isa.TensorOp("logsumexp", ("e",), "out", dims=(0,)), {"e": empty}, ["out"])[0]["out"]
    assert got.tolist() == [-float("inf")] * 3


def test_invalid_new_tensor_ops_give_vm_errors():
    """Wrong dtypes are refused at load (planning), a bad index when it is met, a missing
    axis when the instruction is built."""
    f, i = torch.randn(2, 3), torch.ones(2, 3, dtype=torch.int64)
    for op, inputs in (("bitwise_and", {"a": f, "b": f}), ("logical_or", {"a": i, "b": i}),
                       ("shift_left", {"a": i, "b": i.int()}), ("sin", {"a": i}), ("logsumexp", {"a": i}),
                       ("gather_elements", {"a": f, "b": f})):
        with pytest.raises(DtypeMismatch, match=f"instruction 0 \\(TensorOp\\)"):
            run_instruction(isa.TensorOp(op, tuple(inputs), "out", dims=(0,) if op == "gather_elements" else ()),
                            inputs, ["out"])
    with pytest.raises(ShapeMismatch, match="Dimension out of range"):
        run_instruction(isa.TensorOp("cumsum", ("a",), "out", dims=(5,)), {"a": f}, ["out"])
    with pytest.raises(ShapeMismatch):
        run_instruction(isa.TensorOp("triu", ("a",), "out", dims=(0,)), {"a": torch.ones(3)}, ["out"])
    with pytest.raises(ExecutionFailed, match="out of bounds"):
        run_instruction(isa.TensorOp("gather_elements", ("a", "b"), "out", dims=(1,)), {"a": f, "b": i * 3}, ["out"])
    with pytest.raises(MalformedProgram, match="needs dims"):
        isa.TensorOp("cumsum", ("a",), "out")


def test_sort_is_stable_and_einsum_matches_torch():
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0, float("nan"), 3.0], [0.0, -1.0, 0.0, 5.0, 5.0, -2.0]], dtype=torch.float64)
    for descending in (False, True):
        got, _, _ = run_instruction(isa.Sort("x", "v", "i", 1, descending), {"x": x}, ["v", "i"])
        values, indices = torch.sort(x, dim=1, descending=descending, stable=True)
        assert torch.equal(got["i"], indices) and torch.allclose(got["v"], values, equal_nan=True)
    assert got["i"][0].tolist() == [4, 1, 2, 5, 3, 0]  # NaN first when descending, then ties by index
    y = torch.randn(3, 4, 5, dtype=torch.float64)
    check(isa.Sort("y", "v", "i", 0, True), {"y": y}, lambda y: tuple(torch.sort(y, dim=0, descending=True, stable=True)),
          outputs=("v", "i"))
    a, b = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 4, 5, dtype=torch.float64)
    check(isa.Einsum(("a", "b"), "out", "bij,bjk->bik"), {"a": a, "b": b}, lambda a, b: torch.einsum("bij,bjk->bik", a, b))
    d = torch.randn(2, 3, 3, dtype=torch.float64)
    check(isa.Einsum(("d",), "out", "...ii->...i"), {"d": d}, lambda d: torch.einsum("...ii->...i", d))


def test_sort_and_einsum_costs_and_bad_equations():
    from bcai.vm.gas import compute_einsum_volume, compute_flops

    assert compute_einsum_volume("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]) == 2 * 3 * 4 * 5
    assert compute_einsum_volume("...ii->...i", [(7, 1, 3, 3)]) == 7 * 3
    assert compute_einsum_volume("...i,...i->...", [(5, 1, 2), (1, 6, 2)]) == 5 * 6 * 2
    assert compute_flops(isa.Einsum(("a", "b"), "o", "ij,jk->ik"), [(8, 16), (16, 4)], [(8, 4)], 0) == 2 * 8 * 16 * 4
    assert compute_flops(isa.Sort("x", "v", "i", 1), [(3, 1000)], [(3, 1000), (3, 1000)], 0) == 3000 * 10
    with pytest.raises(ShapeMismatch):
        run_instruction(isa.Einsum(("a",), "out", "ij,jk->ik"), {"a": torch.ones(2, 2)}, ["out"])
    with pytest.raises(ShapeMismatch):
        run_instruction(isa.Sort("a", "v", "i", 3), {"a": torch.ones(2, 2)}, ["v", "i"])


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16])
def test_small_integer_dtypes(dtype):
    a = torch.tensor([100, -100, 7], dtype=dtype)
    b = torch.tensor([100, -100, -2], dtype=dtype)
    got = run_instruction(isa.TensorOp("add", ("a", "b"), "out"), {"a": a, "b": b}, ["out"])[0]["out"]
    assert got.dtype == dtype and torch.equal(got, a + b)  # wraps around as numpy's int8 does
    got = run_instruction(isa.TensorOp("div_trunc", ("a", "b"), "out"), {"a": a, "b": b}, ["out"])[0]["out"]
    assert got.tolist() == [1, 1, -3]
    got = run_instruction(isa.Cast("a", "out", "float32"), {"a": a}, ["out"])[0]["out"]
    assert got.tolist() == [100.0, -100.0, 7.0]


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), m=dims, k=dims, n=dims, batch=st.integers(0, 2))
def test_matmul(dtype, data, m, k, n, batch):
    lead = (batch,) if batch else ()
    a, b = _randn(data, lead + (m, k), dtype), _randn(data, (k, n), dtype)
    check(isa.TensorOp("matmul", ("a", "b"), "out"), {"a": a, "b": b}, lambda a, b: torch.matmul(a, b))


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "prod"])
@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=2, max_size=3), keep=st.booleans())
def test_reductions(op, data, shape, keep):
    x = _randn(data, tuple(shape), torch.float64)
    axis = data.draw(st.integers(0, len(shape) - 1))
    ref = {"sum": lambda x: x.sum(axis, keepdim=keep), "mean": lambda x: x.mean(axis, keepdim=keep),
           "max": lambda x: x.amax(axis, keepdim=keep), "min": lambda x: x.amin(axis, keepdim=keep),
           "prod": lambda x: x.prod(axis, keepdim=keep)}[op]
    check(isa.TensorOp(op, ("x",), "out", dims=(axis,), keepdim=keep), {"x": x}, ref)
    whole = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin, "prod": torch.prod}[op]
    check(isa.TensorOp(op, ("x",), "out"), {"x": x}, lambda x: whole(x))


def test_argmax_argmin_eq_where():
    x = torch.randn(4, 5, dtype=torch.float64)
    check(isa.TensorOp("argmax", ("x",), "out", dims=(1,)), {"x": x}, lambda x: x.argmax(1))
    check(isa.TensorOp("argmin", ("x",), "out", dims=(0,), keepdim=True), {"x": x}, lambda x: x.argmin(0, keepdim=True))
    y = torch.randn(4, 5, dtype=torch.float64)
    c = x > y
    check(isa.TensorOp("where", ("c", "x", "y"), "out"), {"c": c, "x": x, "y": y}, lambda c, x, y: torch.where(c, x, y))
    check(isa.TensorOp("gt", ("x", "y"), "out"), {"x": x, "y": y}, lambda x, y: torch.gt(x, y), wrt=())


@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=2, max_size=4))
def test_shape_ops(data, shape):
    x = _randn(data, tuple(shape), torch.float32)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    check(isa.TensorOp("permute", ("x",), "out", dims=perm), {"x": x}, lambda x: x.permute(perm))
    check(isa.TensorOp("transpose", ("x",), "out", dims=(0, -1)), {"x": x}, lambda x: x.transpose(0, -1))
    check(isa.TensorOp("reshape", ("x",), "out", dims=(-1,)), {"x": x}, lambda x: x.reshape(-1))
    check(isa.TensorOp("unsqueeze", ("x",), "out", dims=(1,)), {"x": x}, lambda x: x.unsqueeze(1))
    check(isa.TensorOp("squeeze", ("x",), "out"), {"x": x}, lambda x: x.squeeze())
    check(isa.Flatten("x", "out", 1, -1), {"x": x}, lambda x: torch.flatten(x, 1))
    axis = data.draw(st.integers(0, len(shape) - 1))
    y = _randn(data, tuple(shape), torch.float32)
    check(isa.TensorOp("concat", ("x", "y"), "out", dims=(axis,)), {"x": x, "y": y}, lambda x, y: torch.cat([x, y], axis))
    sizes = (1, shape[axis] - 1) if shape[axis] > 1 else (1,)
    outs = tuple(f"o{k}" for k in range(len(sizes)))
    check(isa.Split("x", outs, axis, sizes), {"x": x}, lambda x: tuple(torch.split(x, list(sizes), axis)), outputs=outs)
    check(isa.TensorOp("expand", ("x",), "out", dims=(2, *shape)), {"x": x}, lambda x: x.expand(2, *shape))


def test_slice_gather_pad_clamp_cast():
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    check(isa.Slice("x", "out", axes=(1, 2), starts=(1, -3), ends=(5, 100), steps=(2, 1)), {"x": x},
          lambda x: x[:, 1:5:2, -3:])
    check(isa.Slice("x", "out", axes=(1,), starts=(-1,), ends=(-100,), steps=(-2,)), {"x": x},
          lambda x: x.flip(1)[:, ::2])
    idx = torch.tensor([[0, 2], [3, -1]])
    check(isa.Gather("x", "idx", "out", axis=1), {"x": x, "idx": idx},
          lambda x, idx: x[:, [[0, 2], [3, 5]]], wrt=("x",))
    for mode in ("constant", "reflect", "replicate", "circular"):
        check(isa.Pad("x", "out", (1, 2, 2, 1), mode, 0.5), {"x": x},
              lambda x: F.pad(x, (1, 2, 2, 1), mode=mode, **({"value": 0.5} if mode == "constant" else {})))
    check(isa.Clamp("x", "out", -0.5, None), {"x": x}, lambda x: x.clamp(min=-0.5))
    check(isa.Cast("x", "out", "float32"), {"x": x}, lambda x: x.float())


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), batch=dims, n_in=dims, n_out=dims, bias=st.booleans())
def test_linear(dtype, data, batch, n_in, n_out, bias):
    x, w = _randn(data, (batch, n_in), dtype), _randn(data, (n_out, n_in), dtype)
    inputs = {"x": x, "w": w} | ({"b": _randn(data, (n_out,), dtype)} if bias else {})
    check(isa.Linear("x", "w", "b" if bias else None, "out"), inputs,
          lambda x, w, b=None: F.linear(x, w, b))


@pytest.mark.parametrize("nd", [1, 2, 3])
@SETTINGS
@given(data=st.data(), stride=st.integers(1, 2), pad=st.integers(0, 1), dil=st.integers(1, 2), groups=st.sampled_from([1, 2]))
def test_conv(nd, data, stride, pad, dil, groups):
    size = 5 if nd < 3 else 4
    x = _randn(data, (2, 2 * groups) + (size,) * nd, torch.float64)
    w = _randn(data, (2 * groups, 2) + (2,) * nd, torch.float64)
    b = _randn(data, (2 * groups,), torch.float64)
    cls = {1: isa.Conv1D, 2: isa.Conv2D, 3: isa.Conv3D}[nd]
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    check(cls("x", "w", "b", "out", (stride,) * nd, (pad,) * nd, (dil,) * nd, groups), {"x": x, "w": w, "b": b},
          lambda x, w, b: fn(x, w, b, stride, pad, dil, groups))
    tcls = {1: isa.ConvTranspose1D, 2: isa.ConvTranspose2D, 3: isa.ConvTranspose3D}[nd]
    tfn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    check(tcls("x", "w", "b", "out", (stride,) * nd, (0,) * nd, (1,) * nd, groups, (stride - 1,) * nd),
          {"x": x, "w": w, "b": b}, lambda x, w, b: tfn(x, w, b, stride, 0, stride - 1, groups, 1))


@pytest.mark.parametrize("nd", [1, 2, 3])
@SETTINGS
@given(data=st.data(), k=st.integers(1, 3), ceil=st.booleans(), include=st.booleans())
def test_pooling(nd, data, k, ceil, include):
    x = _randn(data, (2, 3) + (5,) * nd, torch.float64)
    pad = k // 2
    mcls = {1: isa.MaxPool1D, 2: isa.MaxPool2D, 3: isa.MaxPool3D}[nd]
    acls = {1: isa.AvgPool1D, 2: isa.AvgPool2D, 3: isa.AvgPool3D}[nd]
    mfn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
    afn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    check(mcls("x", "out", (k,) * nd, (), (pad,) * nd, ceil), {"x": x}, lambda x: mfn(x, k, k, pad, ceil_mode=ceil))
    check(acls("x", "out", (k,) * nd, (1,) * nd, (pad,) * nd, ceil, include), {"x": x},
          lambda x: afn(x, k, 1, pad, ceil, include))


@pytest.mark.parametrize("training", [False, True])
def test_batch_norm_matches_module_and_updates_running_stats(training):
    bn = nn.BatchNorm2d(3, momentum=0.2).double().train(training)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    inputs = {"x": x, "w": bn.weight.detach() + 0.3, "b": bn.bias.detach() - 0.1,
              "rm": bn.running_mean.clone(), "rv": bn.running_var.clone()}
    instr = isa.BatchNorm("x", "w", "b", "rm", "rv", "out", training, 0.2, 1e-5)
    check(instr, inputs, lambda x, w, b, rm, rv: F.batch_norm(x, rm.detach().clone(), rv.detach().clone(), w, b,
                                                               training, 0.2, 1e-5), wrt=("x", "w", "b"))


def test_batch_norm_training_updates_state_in_place():
    from vm_harness import state
    from bcai.vm import VM, Entry, Program, TensorSpec
    program = Program(init=(state("rm", torch.zeros(3)), state("rv", torch.ones(3))),
                      entries=(Entry("main", (TensorSpec("x", (-1, 3)),),
                                     (isa.BatchNorm("x", None, None, "rm", "rv", "out", True, 0.1, 1e-5),), ("out",)),),
                      buffers=("rm", "rv"))
    session = VM("cpu").load(program)
    x = torch.randn(8, 3)
    session.run("main", {"x": x})
    rm, rv = torch.zeros(3), torch.ones(3)
    F.batch_norm(x, rm, rv, None, None, True, 0.1, 1e-5)
    params = session.get_parameters()
    torch.testing.assert_close(params["rm"], rm)
    torch.testing.assert_close(params["rv"], rv)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=2, max_size=3), nd=st.integers(1, 2))
def test_layer_norm(dtype, data, shape, nd):
    x = _randn(data, tuple(shape), dtype)
    norm_shape = tuple(shape[-nd:])
    w, b = _randn(data, norm_shape, dtype), _randn(data, norm_shape, dtype)
    check(isa.LayerNorm("x", "w", "b", "out", nd, 1e-5), {"x": x, "w": w, "b": b},
          lambda x, w, b: F.layer_norm(x, norm_shape, w, b, 1e-5))


@pytest.mark.parametrize("cls,fn", [
    (isa.ReLU, lambda x: F.relu(x)), (isa.Sigmoid, lambda x: torch.sigmoid(x)), (isa.Tanh, lambda x: torch.tanh(x)), (isa.SiLU, lambda x: F.silu(x)),
    (isa.Softsign, lambda x: F.softsign(x)), (isa.SELU, lambda x: F.selu(x)), (isa.GELU, lambda x: F.gelu(x)),
])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), shape=st.lists(dims, min_size=1, max_size=3))
def test_activations(cls, fn, dtype, data, shape):
    x = _randn(data, tuple(shape), dtype)
    check(cls("x", "out"), {"x": x}, fn)


def test_parameterised_activations():
    x = torch.randn(3, 4, 5, dtype=torch.float64) * 3
    check(isa.GELU("x", "out", "tanh"), {"x": x}, lambda x: F.gelu(x, approximate="tanh"))
    check(isa.LeakyReLU("x", "out", 0.2), {"x": x}, lambda x: F.leaky_relu(x, 0.2))
    check(isa.ELU("x", "out", 0.7), {"x": x}, lambda x: F.elu(x, 0.7))
    check(isa.Softplus("x", "out", 2.0, 5.0), {"x": x}, lambda x: F.softplus(x, 2.0, 5.0))
    check(isa.HardSigmoid("x", "out", 0.25, 0.5), {"x": x}, lambda x: torch.clamp(0.25 * x + 0.5, 0, 1))  # ONNX formula
    torch.testing.assert_close(run_instruction(isa.HardSigmoid("x", "out", 1 / 6, 0.5), {"x": x}, ("out",))[0]["out"], F.hardsigmoid(x))
    w = torch.rand(4, dtype=torch.float64)
    check(isa.PReLU("x", "w", "out"), {"x": x, "w": w}, lambda x, w: F.prelu(x, w))
    for dim in (0, 1, -1):
        check(isa.Softmax("x", "out", dim), {"x": x}, lambda x: F.softmax(x, dim))
        check(isa.LogSoftmax("x", "out", dim), {"x": x}, lambda x: F.log_softmax(x, dim))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@SETTINGS
@given(data=st.data(), batch=dims, classes=st.integers(2, 5), smoothing=st.sampled_from([0.0, 0.1]))
def test_losses(reduction, data, batch, classes, smoothing):
    logits = _randn(data, (batch, classes), torch.float64)
    target = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(batch))
    check(isa.CrossEntropyLoss("x", "t", "out", reduction, smoothing), {"x": logits, "t": target},
          lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing), wrt=("x",))
    y = _randn(data, (batch, classes), torch.float64)
    check(isa.MSELoss("x", "y", "out", reduction), {"x": logits, "y": y},
          lambda x, y: F.mse_loss(x, y, reduction=reduction))


@SETTINGS
@given(data=st.data(), vocab=st.integers(2, 6), dim=dims, n=dims)
def test_embedding(data, vocab, dim, n):
    w = _randn(data, (vocab, dim), torch.float64)
    idx = torch.randint(0, vocab, (2, n), generator=torch.Generator().manual_seed(n))
    check(isa.Embedding("idx", "w", "out", 0), {"idx": idx, "w": w}, lambda idx, w: F.embedding(idx, w, 0), wrt=("w",))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_matches_module(bidirectional, layers):
    torch.manual_seed(layers)
    lstm = nn.LSTM(3, 4, num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    dirs = 2 if bidirectional else 1
    h0 = torch.randn(layers * dirs, 2, 4, dtype=torch.float64)
    c0 = torch.randn(layers * dirs, 2, 4, dtype=torch.float64)
    weights = {n: getattr(lstm, n).detach() for n in lstm._flat_weights_names}
    instr = isa.LSTM("x", tuple(weights), "out", 4, layers, bidirectional, True, True, "h0", "c0", "hn", "cn")

    def reference(x, h0, c0, **w):  # torch.nn.LSTM itself, with the weights as leaves
        out, (hn, cn) = torch.func.functional_call(lstm, w, (x, (h0, c0)))
        return out, hn, cn

    check(instr, {"x": x, "h0": h0, "c0": c0, **weights}, reference, outputs=("out", "hn", "cn"))


@pytest.mark.parametrize("causal", [False, True])
@SETTINGS
@given(data=st.data(), heads=st.sampled_from([1, 2]), length=st.integers(1, 4))
def test_attention_matches_multihead_attention(causal, data, heads, length):
    e = 4
    mha = nn.MultiheadAttention(e, heads, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    x = _randn(data, (2, length, e), torch.float64)
    inputs = {"x": x, "w_in": mha.in_proj_weight.detach(), "b_in": mha.in_proj_bias.detach(),
              "w_out": mha.out_proj.weight.detach(), "b_out": mha.out_proj.bias.detach()}
    mask = torch.triu(torch.ones(length, length, dtype=torch.bool), 1) if causal else None

    def reference(x, w_in, b_in, w_out, b_out):
        out, _ = F.multi_head_attention_forward(
            x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), e, heads, w_in, b_in, None, None, False, 0.0,
            w_out, b_out, training=False, need_weights=False, attn_mask=mask)
        return out.transpose(0, 1)

    check(isa.Attention("x", "x", "x", "w_in", "b_in", "w_out", "b_out", "out", e, heads, causal), inputs, reference)


def test_dropout_is_seeded_scaled_and_identity_in_eval():
    x = torch.randn(64, 32, dtype=torch.float64)
    out1, grads, _ = run_instruction(isa.Dropout("x", "out", 0.25), {"x": x}, ("out",), ("x",), {"out": torch.ones_like(x)}, seed=3)
    out2, _, _ = run_instruction(isa.Dropout("x", "out", 0.25), {"x": x}, ("out",), seed=3)
    out3, _, _ = run_instruction(isa.Dropout("x", "out", 0.25), {"x": x}, ("out",), seed=4)
    kept = out1["out"] != 0
    torch.testing.assert_close(out1["out"][kept], x[kept] / 0.75)
    assert torch.equal(out1["out"], out2["out"])  # same seed, same mask
    assert not torch.equal(out1["out"], out3["out"])  # another seed, another mask
    assert 0.6 < kept.double().mean().item() < 0.9
    torch.testing.assert_close(grads["x"], kept.double() / 0.75)
    out4, _, _ = run_instruction(isa.Dropout("x", "out", 0.25, training=False), {"x": x}, ("out",))
    assert torch.equal(out4["out"], x)


def test_optimizer_steps_match_torch_optim_bitwise():
    from bcai.vm import VM, Entry, Program, TensorSpec
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    x = torch.randn(8, 3)
    for name in ("adam", "adamw", "sgd"):
        ref_w = w0.clone().requires_grad_(True)
        opt = {"adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1),
               "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
               "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True)}[name]([ref_w])
        init = [isa.TensorCreate("w", (5, 3), "float32", "data", data=w0.numpy().tobytes(), requires_grad=True)]
        if name == "sgd":
            init.append(isa.TensorCreate("buf", (5, 3)))
            step = isa.SGDStep(("w",), ("g",), 0.05, ("buf",), 0.9, 0.0, 0.1, True)
        else:
            init += [isa.TensorCreate("m", (5, 3)), isa.TensorCreate("v", (5, 3)), isa.TensorCreate("s", ())]
            step = isa.AdamStep(("w",), ("g",), ("m",), ("v",), ("s",), 0.01, weight_decay=0.1, decoupled=name == "adamw")
        body = (isa.Linear("x", "w", None, "y"), isa.TensorOp("mul", ("y", "y"), "y2"),
                isa.TensorOp("mean", ("y2",), "loss"), isa.Backward("loss", ("w",), ("g",)), step)
        program = Program(init=tuple(init), entries=(Entry("step", (TensorSpec("x", (-1, 3)),), body, ("loss",)),),
                          parameters=("w",))
        session = VM("cpu").load(program)
        for _ in range(3):
            session.run("step", {"x": x})
            opt.zero_grad()
            (F.linear(x, ref_w) ** 2).mean().backward()
            opt.step()
        assert torch.equal(session.get_parameters()["w"], ref_w.detach()), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_dtypes(dtype):
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=g).to(dtype) for s in ((4, 6), (3, 6), (3,)))
    check(isa.Linear("x", "w", "b", "out"), {"x": x, "w": w, "b": b}, lambda x, w, b: F.linear(x, w, b))
    check(isa.ReLU("x", "out"), {"x": x}, lambda x: F.relu(x))
    check(isa.Softmax("x", "out", 1), {"x": x}, lambda x: F.softmax(x, 1))
    check(isa.TensorOp("mul", ("x", "x2"), "out"), {"x": x, "x2": x.flip(0)}, lambda x, x2: x * x2)
    check(isa.LayerNorm("x", None, None, "out"), {"x": x}, lambda x: F.layer_norm(x, (6,)))


def test_every_instruction_is_covered_here():
    import inspect
    import sys
    source = inspect.getsource(sys.modules[__name__])
    missing = [k for k in isa.INSTRUCTIONS if k not in source and k not in ("TensorCreate", "ToGPU", "ToCPU", "PythonExecute")]
    assert not missing, f"instructions without a reference test: {missing}"


def test_tensor_create_inits_match_torch_generators():
    from bcai.vm import VM, Program
    program = Program(init=(
        isa.TensorCreate("u", (1000,), init="uniform", a=-0.25, b=0.5),
        isa.TensorCreate("n", (1000,), init="normal", a=1.0, b=2.0),
        isa.TensorCreate("f", (2, 2), "float64", init="full", a=3.5),
        isa.TensorCreate("o", (3,), "int64", init="ones"),
        isa.TensorCreate("d", (2,), "int32", init="data", data=(7).to_bytes(4, "little") + (-1).to_bytes(4, "little", signed=True)),
    ), entries=(), buffers=("u", "n", "f", "o", "d"), seed=42)
    state = VM("cpu").load(program).get_parameters()
    g = torch.Generator().manual_seed(42)  # the program's init generator, drawn in init order
    assert torch.equal(state["u"], torch.empty(1000).uniform_(-0.25, 0.5, generator=g))
    assert torch.equal(state["n"], torch.empty(1000).normal_(1.0, 2.0, generator=g))
    assert torch.equal(state["f"], torch.full((2, 2), 3.5, dtype=torch.float64))
    assert torch.equal(state["o"], torch.ones(3, dtype=torch.int64))
    assert state["d"].tolist() == [7, -1] and state["d"].dtype == torch.int32


@pytest.mark.parametrize("reduction,torch_reduce", [("add", "sum"), ("mul", "prod"), ("max", "amax"), ("min", "amin")])
def test_scatter_elements_reductions_match_torch(reduction, torch_reduce):
    x = torch.randn(3, 4, dtype=torch.float64)
    idx = torch.tensor([[0, -1, 1], [2, 2, 0]])  # duplicates combine through the reduction
    upd = torch.randn(2, 3, dtype=torch.float64)
    positive = torch.where(idx < 0, idx + 4, idx)
    check(isa.ScatterElements("x", "i", "u", "out", 1, reduction), {"x": x, "i": idx, "u": upd},
          lambda x, i, u: torch.scatter_reduce(x, 1, positive, u, torch_reduce, include_self=True), wrt=())


def test_scatter_elements_replaces_and_refuses_duplicates_and_bad_indices():
    x = torch.zeros(2, 3, dtype=torch.float64)
    idx = torch.tensor([[2, 0], [-1, 1]])
    upd = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    got = run_instruction(isa.ScatterElements("x", "i", "u", "out", 1), {"x": x, "i": idx, "u": upd}, ["out"])[0]["out"]
    assert got.tolist() == [[2.0, 0.0, 1.0], [0.0, 4.0, 3.0]]
    with pytest.raises(ExecutionFailed, match="two updates of one position"):
        run_instruction(isa.ScatterElements("x", "i", "u", "out", 1), {"x": x, "i": torch.tensor([[1, 1]]),
                                                                       "u": upd[:1]}, ["out"])
    with pytest.raises(ExecutionFailed):
        run_instruction(isa.ScatterElements("x", "i", "u", "out", 1), {"x": x, "i": idx * 5, "u": upd}, ["out"])
    with pytest.raises(DtypeMismatch):
        run_instruction(isa.ScatterElements("x", "i", "u", "out", 1), {"x": x, "i": upd, "u": upd}, ["out"])
    with pytest.raises(MalformedProgram, match="unknown reduction"):
        isa.ScatterElements("x", "i", "u", "out", 1, "mean")
