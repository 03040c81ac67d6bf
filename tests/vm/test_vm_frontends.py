"""Front ends: torch.fx, ONNX (exported from torch and hand-built), BML."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from bcai.errors import ConstantInputNeeded, InvalidBml, InvalidFeed, InvalidModel, UnsupportedOperators
from bcai.vm import VM, Limits, compile_torch, from_bml, from_onnx, isa, parse_bml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bml"


def run_forward(program, **feeds):
    out, _ = VM("cpu").run(program, feeds, "forward")
    return out


# --- torch.fx ---------------------------------------------------------------------------


def test_seed_example_linear_compiles_to_tensor_create_and_linear():
    lin = nn.Linear(784, 10)
    program = compile_torch(lin, torch.randn(1, 784))
    assert [type(i) for i in program.init] == [isa.TensorCreate, isa.TensorCreate]
    assert [type(i) for i in program.entries[0].body] == [isa.Linear]
    assert program.parameters == ("weight", "bias")
    x = torch.randn(5, 784)
    assert torch.equal(run_forward(program, x=x)["y"], lin(x).detach())


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn(self.conv(x))))
        h = h.view(x.size(0), -1)
        return torch.log_softmax(self.fc(self.drop(h)) * 2.0 + 1.0, dim=1)


class SeqModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True, bidirectional=True)
        self.att = nn.MultiheadAttention(16, 2, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        h, _ = self.lstm(self.emb(tokens))
        a, _ = self.att(h, h, h)
        return self.head(nn.functional.gelu(self.norm(a + h)).mean(1))


@pytest.mark.parametrize("factory,example", [
    (Net, torch.randn(3, 1, 8, 8)),
    (SeqModel, torch.randint(0, 20, (2, 5))),
    (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, groups=2, dilation=2), nn.ELU(), nn.AvgPool1d(2), nn.Flatten(),
                           nn.Linear(8, 2), nn.Softmax(-1)), torch.randn(2, 2, 8)),
    (lambda: nn.Sequential(nn.ConvTranspose2d(2, 3, 2, stride=2), nn.SiLU(), nn.MaxPool2d(2), nn.Tanh(),
                           nn.LeakyReLU(0.1), nn.Softplus()), torch.randn(1, 2, 4, 4)),
])
def test_compile_torch_matches_module(factory, example):
    torch.manual_seed(0)
    module = factory().eval()
    program = compile_torch(module, example)
    got = run_forward(program, x=example)["y"]
    torch.testing.assert_close(got, module(example).detach(), rtol=1e-5, atol=1e-6)


def test_compile_torch_training_program_trains_like_torch():
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    program = compile_torch(module, torch.zeros(1, 4), loss="cross_entropy")
    assert program.entry_names == ("forward", "train_step", "evaluate", "compute_gradients", "apply_gradients")
    session = VM("cpu").load(program)
    ref = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    ref.load_state_dict(module.state_dict())
    opt = torch.optim.Adam(ref.parameters(), lr=0.001)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    for _ in range(3):
        out, _ = session.run("train_step", {"x": x, "y": y})
        opt.zero_grad()
        loss = nn.functional.cross_entropy(ref(x), y)
        loss.backward()
        opt.step()
        assert torch.equal(out["loss"], loss.detach())
    params = session.get_parameters()
    assert torch.equal(params["0.weight"], ref[0].weight.detach())


def test_invalid_torch_unsupported_lists_all():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(4, 4)
            self.up = nn.Upsample(scale_factor=2)

        def forward(self, x):
            return torch.cumsum(self.up(self.gru(x)[0]), 0)

    with pytest.raises(UnsupportedOperators) as info:
        compile_torch(Odd(), torch.zeros(2, 1, 4))
    assert "GRU" in str(info.value) and "Upsample" in str(info.value) and "cumsum" in str(info.value)

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(InvalidModel, match="torch.fx cannot trace"):
        compile_torch(Branchy(), torch.zeros(2))


# --- ONNX: exported from torch ------------------------------------------------------------


def export(module: nn.Module, x: torch.Tensor, **kwargs) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (x,), buf, dynamo=False, input_names=["x"], output_names=["y"], **kwargs)
    return buf.getvalue()


class OnnxLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(5, 6, bidirectional=True)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return out + h.sum() + c.mean()


@pytest.mark.parametrize("factory,x,kwargs", [
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(64, 10), nn.LogSoftmax(1)), torch.randn(2, 3, 8, 8), {}),
    (lambda: nn.Sequential(nn.Conv1d(4, 4, 3, padding=2, dilation=2, groups=2), nn.ELU(), nn.AvgPool1d(2), nn.SELU(),
                           nn.Softplus(), nn.Softsign(), nn.Sigmoid()), torch.randn(2, 4, 8), {}),
    (lambda: nn.Sequential(nn.Conv3d(2, 2, 3, padding=1), nn.PReLU(2), nn.ConvTranspose3d(2, 3, 2, stride=2),
                           nn.AdaptiveAvgPool3d(1), nn.Flatten()), torch.randn(1, 2, 4, 4, 4), {}),
    (OnnxLSTM, torch.randn(4, 2, 5), {}),
    (lambda: nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Hardsigmoid(), nn.Softmax(-1)),
     torch.randn(3, 6), {"opset_version": 17}),
    (lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2), nn.Tanh()),
     torch.randn(3, 6), {"dynamic_axes": {"x": {0: "batch"}}}),
    (lambda: nn.Sequential(nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(1, 2, 2, stride=2), nn.ReLU()),
     torch.randn(1, 1, 5, 5), {}),
])
def test_onnx_exported_from_torch_matches_module(factory, x, kwargs):
    torch.manual_seed(0)
    module = factory().eval()
    program = from_onnx(export(module, x, **kwargs))
    got = run_forward(program, x=x)["y"]
    torch.testing.assert_close(got, module(x).detach(), rtol=1e-5, atol=1e-5)


def test_onnx_dynamic_batch_axis_runs_other_batch_sizes(tmp_path):
    module = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    path = tmp_path / "m.onnx"
    path.write_bytes(export(module, torch.randn(3, 6), dynamic_axes={"x": {0: "batch"}}))
    program = from_onnx(path)
    assert program.entries[0].inputs[0].shape == (-1, 6)
    x = torch.randn(11, 6)
    torch.testing.assert_close(run_forward(program, x=x)["y"], module(x).detach())


# --- ONNX: hand-built graphs ----------------------------------------------------------------


def make_model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_onnx_hand_built_gemm_with_transposes_alpha_beta():
    a = np.random.randn(3, 4).astype(np.float32)
    b = np.random.randn(5, 3).astype(np.float32)
    c = np.random.randn(5).astype(np.float32)
    node = helper.make_node("Gemm", ["a", "B", "C"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0)
    model = make_model([node], [vi("a", [3, 4])], [vi("y", [4, 5])],
                       [numpy_helper.from_array(b, "B"), numpy_helper.from_array(c, "C")])
    got = run_forward(from_onnx(model), a=torch.from_numpy(a))["y"]
    np.testing.assert_allclose(got.numpy(), 0.5 * a.T @ b.T + 2.0 * c, rtol=1e-5, atol=1e-5)


def test_onnx_hand_built_shape_ops_and_reductions():
    x = np.random.randn(2, 3, 4).astype(np.float32)
    idx = np.array([2, 0], dtype=np.int64)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),                       # (2,4,3)
        helper.make_node("Split", ["t", "sizes"], ["s1", "s2"], axis=1),                   # (2,1,3) (2,3,3)
        helper.make_node("Concat", ["s2", "s1"], ["c"], axis=1),                           # (2,4,3)
        helper.make_node("Pad", ["c", "pads"], ["p"], mode="reflect"),                     # (2,4,5)
        helper.make_node("ReduceMean", ["p", "axes"], ["r"], keepdims=0),                 # (2,5)
        helper.make_node("Gather", ["r", "idx"], ["g"], axis=1),                          # (2,2)
        helper.make_node("Clip", ["g", "lo", "hi"], ["k"]),
        helper.make_node("Unsqueeze", ["k", "ax0"], ["u"]),                               # (1,2,2)
        helper.make_node("Flatten", ["u"], ["f"], axis=2),                                 # (2,2)
        helper.make_node("Softmax", ["f"], ["y"], axis=0),
    ]
    inits = [numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "sizes"),
             numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 1], dtype=np.int64), "pads"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
             numpy_helper.from_array(idx, "idx"),
             numpy_helper.from_array(np.array(-0.3, dtype=np.float32), "lo"),
             numpy_helper.from_array(np.array(0.4, dtype=np.float32), "hi"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "ax0")]
    model = make_model(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 2])], inits, opset=18)
    got = run_forward(from_onnx(model), x=torch.from_numpy(x))["y"].numpy()
    t = x.transpose(0, 2, 1)
    c = np.concatenate([t[:, 1:], t[:, :1]], axis=1)
    p = np.pad(c, ((0, 0), (0, 0), (1, 1)), mode="reflect")
    r = p.mean(axis=1)
    k = np.clip(r[:, idx], -0.3, 0.4)
    f = k.reshape(2, 2)
    expected = np.exp(f) / np.exp(f).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_onnx_constant_folding_of_shape_chains():
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, dtype=np.int64))),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "ax"], ["b1"]),
        helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array([0], dtype=np.int64), "ax"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus1")]
    model = make_model(nodes, [vi("x", [3, 2, 2])], [vi("y", [3, 4])], inits)
    program = from_onnx(model)
    assert [type(i) for i in program.entries[0].body] == [isa.TensorOp]
    x = torch.randn(3, 2, 2)
    assert torch.equal(run_forward(program, x=x)["y"], x.reshape(3, 4))


def test_invalid_onnx_unsupported_operators_listed_together():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Unique", ["a"], ["b"]),
             helper.make_node("Det", ["b"], ["y"]),
             helper.make_node("AveragePool", ["x"], ["z"], kernel_shape=[1], dilations=[2])]
    graph = helper.make_graph(nodes, "g", [vi("x", [2, 2])], [vi("y", [2, 2]), vi("z", [2, 2])],
                              [numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    with pytest.raises(UnsupportedOperators) as info:
        from_onnx(model.SerializeToString())
    message = str(info.value)
    assert "Unique" in message and "Det" in message and "AveragePool(dilations)" in message


def test_invalid_onnx_bytes_and_paths(tmp_path):
    with pytest.raises(InvalidModel, match="not a valid ONNX"):
        from_onnx(b"definitely not protobuf")
    with pytest.raises(InvalidModel):
        from_onnx(tmp_path / "missing.onnx")


def test_onnx_inputs_needed_as_constants_raise_then_bind():
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)]
    model = make_model(nodes, [vi("x", [2, 3]), vi("axes", [1], TensorProto.INT64)], [vi("y", ["n"])])
    with pytest.raises(ConstantInputNeeded, match="computed \\(non-constant\\) input 'axes'") as info:
        from_onnx(model)
    assert info.value.value == "axes" and isinstance(info.value, UnsupportedOperators)
    program = from_onnx(model, bind={"axes": np.array([-1], np.int64)})
    assert [s.name for s in program.entries[0].inputs] == ["x"]
    x = torch.randn(2, 3)
    torch.testing.assert_close(run_forward(program, x=x)["y"], x.sum(-1))
    with pytest.raises(InvalidFeed, match="not an input of the graph"):
        from_onnx(model, bind={"nope": np.array([0], np.int64)})
    with pytest.raises(InvalidFeed, match="graph declares int64 \\[1\\]"):
        from_onnx(model, bind={"axes": np.array([0, 1], np.int64)})


# --- ONNX: malformed and hostile models ------------------------------------------------------


def relu_model() -> bytes:
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])])


@pytest.mark.parametrize("cut", [1, 7, 0.5, -1])
def test_invalid_onnx_truncated_protobuf(cut):
    data = relu_model()
    end = int(len(data) * cut) if isinstance(cut, float) else cut
    with pytest.raises(InvalidModel, match="not a valid ONNX"):
        from_onnx(data[:end])


def test_invalid_onnx_node_reads_a_value_nothing_produces():
    model = make_model([helper.make_node("Relu", ["nowhere"], ["y"])], [vi("x", [2])], [vi("y", [2])])
    with pytest.raises(InvalidModel, match="nowhere"):
        from_onnx(model)


def test_invalid_onnx_cycle():
    nodes = [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])]
    with pytest.raises(InvalidModel, match="topologically sorted"):
        from_onnx(make_model(nodes, [vi("x", [2])], [vi("b", [2])]))


def test_invalid_onnx_initializer_declaring_more_than_its_data():
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6], raw_data=b"\0" * 16)
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])], [vi("y", [2])], [w])
    with pytest.raises(InvalidModel, match="too small for the declared shape"):
        from_onnx(model)


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand"])
def test_invalid_onnx_folded_constant_over_the_memory_limit_is_refused_before_allocating(op):
    shape = numpy_helper.from_array(np.array([10**6, 10**6], np.int64), "s")
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    node = helper.make_node(op, ["s"] if op == "ConstantOfShape" else ["one", "s"], ["y"])
    model = make_model([node], [], [vi("y", ["a", "b"])], [shape, one])
    with pytest.raises(InvalidModel, match="over the program's memory limit"):
        from_onnx(model)
    small = make_model([helper.make_node(op, node.input, ["y"])], [], [vi("y", ["a", "b"])],
                       [numpy_helper.from_array(np.array([3, 4], np.int64), "s"), one])
    with pytest.raises(InvalidModel, match=r"\(48 bytes\), over the program's memory limit \(40 bytes\)"):
        from_onnx(small, limits=Limits(max_memory_bytes=40))
    expected = np.zeros((3, 4), np.float32) if op == "ConstantOfShape" else np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(run_forward(from_onnx(small))["y"].numpy(), expected)


def external_model(location: str) -> bytes:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
    w.external_data.add(key="location", value=location)
    return make_model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])], [vi("y", [2])], [w])


@pytest.mark.parametrize("location,reason", [("../../etc/passwd", "points outside the directory"),
                                             ("/etc/passwd", "should be a relative path"),
                                             ("link.bin", "symbolic link")])
def test_invalid_onnx_external_data_outside_the_model_directory(tmp_path, location, reason):
    (tmp_path / "link.bin").symlink_to("/etc/passwd")
    path = tmp_path / "m.onnx"
    path.write_bytes(external_model(location))
    with pytest.raises(InvalidModel, match=reason):
        from_onnx(path)
    with pytest.raises(InvalidModel, match="cannot use external data"):
        from_onnx(external_model(location))


def test_onnx_external_data_beside_the_model_file_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.array([1.5, -2.0], np.float32).tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(external_model("w.bin"))
    got = run_forward(from_onnx(path), x=torch.zeros(2))["y"]
    assert got.tolist() == [1.5, -2.0]
    with pytest.raises(InvalidModel, match="cannot use external data"):  # bytes: no directory to resolve in
        from_onnx(external_model("w.bin"))


def test_invalid_onnx_negative_input_dimension():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [-3])], [vi("y", [-3])])
    with pytest.raises(InvalidModel, match="negative dimension"):
        from_onnx(model)


def test_invalid_onnx_inconsistent_constants_are_invalid_model_not_a_crash():
    data = numpy_helper.from_array(np.array([1, 2, 3], np.int64), "data")
    idx = numpy_helper.from_array(np.array([10], np.int64), "idx")
    nodes = [helper.make_node("Gather", ["data", "idx"], ["g"]), helper.make_node("Reshape", ["x", "g"], ["y"])]
    model = make_model(nodes, [vi("x", [2])], [vi("y", ["n"])], [data, idx])
    with pytest.raises(InvalidModel, match="inconsistent: IndexError"):
        from_onnx(model)


# --- BML ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_bml_examples_compile_and_train_one_step(path):
    program = from_bml(path)
    assert program.training is not None and program.entry_names == ("forward", "train_step", "evaluate", "compute_gradients", "apply_gradients")
    spec = program.entry("train_step").inputs[0]
    shape = tuple(2 if d == -1 else d for d in spec.shape)
    x = torch.randint(0, 5, shape) if spec.dtype == "int64" else torch.rand(shape)
    session = VM("cpu").load(program)
    label = program.entry("train_step").inputs[1]
    y = torch.zeros(2, dtype=torch.int64) if label.dtype == "int64" else torch.zeros(2, *label.shape[1:])
    out, metrics = session.run("train_step", {"x": x, "y": y})
    assert torch.isfinite(out["loss"]) and metrics.flops > 0
    logits, _ = session.run("forward", {"x": x})
    assert logits["logits"].shape[0] == 2


def test_bml_templates_lstm_and_transformer_build_and_run():
    for doc in (
        "bml: 1\nmodel: {template: lstm, input_shape: [6, 3], hidden_size: 8, num_layers: 2, bidirectional: true,"
        " num_classes: 4}\ntraining: {epochs: 1, batch_size: 4, optimizer: sgd, lr: 0.1, momentum: 0.9}\n",
        "bml: 1\nmodel: {template: transformer, input_shape: [5], vocab_size: 11, embed_dim: 8, num_heads: 2,"
        " ff_dim: 16, num_layers: 2, num_classes: 3, dropout: 0.1, causal: true}\n"
        "training: {epochs: 1, batch_size: 4, optimizer: adamw, weight_decay: 0.01}\n",
        "bml: 1\nmodel: {template: transformer, input_shape: [5, 3], embed_dim: 8, num_heads: 1, ff_dim: 8,"
        " num_classes: 2, activation: gelu}\ntraining: {epochs: 1, batch_size: 4, loss: mse}\n",
        "bml: 1\nmodel: {template: mlp, input_shape: [1, 4, 4], hidden: [8], num_classes: 2, batch_norm: true}\n"
        "training: {epochs: 1, batch_size: 4}\n",
    ):
        program = from_bml(doc)
        session = VM("cpu").load(program)
        spec, label = program.entry("train_step").inputs
        shape = tuple(4 if d == -1 else d for d in spec.shape)
        x = torch.randint(0, 11, shape) if spec.dtype == "int64" else torch.rand(shape)
        y = torch.randint(0, 2, (4,)) if label.dtype == "int64" else torch.rand(4, *label.shape[1:])
        before = session.compute_model_hash()
        session.run("train_step", {"x": x, "y": y})
        assert session.compute_model_hash() != before


def test_bml_hyperparameters_land_in_the_program_as_decimal_strings():
    program = from_bml(EXAMPLES / "digits_cnn.yaml")
    step = program.entry("train_step").body[-1]
    assert isinstance(step, isa.AdamStep) and step.lr == "0.002"
    assert program.training.epochs == 10 and program.training.batch_size == 32 and program.seed == 1
    assert program.limits.max_memory_bytes == 256 << 20


@pytest.mark.parametrize("doc,match", [
    ("bml: [unclosed", "not valid YAML"),
    ("- a list", "mapping"),
    ("bml: 2\nmodel: {template: mlp}\ntraining: {}", "version 1"),
    ("bml: 1\nmodel: {template: resnet}\ntraining: {epochs: 1, batch_size: 2}", "unknown template"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2, colour: red}\ntraining: {epochs: 1, batch_size: 2}", "colour"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4, -1], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2}", r"model.input_shape\[1\]"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1}", "batch_size: required"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2, optimizer: lbfgs}", "optimizer"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2, lr: fast}", "training.lr"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2, dataset: notacid}", "dataset"),
    ("bml: 1\nmodel: {template: cnn, input_shape: [4], channels: [2], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2}", "channels, height, width"),
    ("bml: 1\nmodel: {template: transformer, input_shape: [4, 3], embed_dim: 5, num_heads: 2, ff_dim: 4, num_classes: 2}\ntraining: {epochs: 1, batch_size: 2}", "multiple"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2}\ndevices: [tpu]", "devices"),
    ("bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2}\nextra: 1", "extra"),
])
def test_invalid_bml(doc, match):
    with pytest.raises(InvalidBml, match=match):
        from_bml(doc)
    if match != "multiple" and "height" not in match:
        with pytest.raises(InvalidBml, match=match):
            parse_bml(doc)


def test_bml_dataset_cid_is_carried():
    from bcai.crypto import Cid
    cid = str(Cid.of(b"digits"))
    program = from_bml(f"bml: 1\nmodel: {{template: mlp, input_shape: [4], num_classes: 2}}\n"
                       f"training: {{epochs: 1, batch_size: 2, dataset: {cid}}}\n")
    assert program.training.dataset == cid


def test_onnx_range_folds_and_hostile_ranges_are_refused_before_allocating():
    def range_model(start, limit, delta, dtype=np.int64):
        inits = [numpy_helper.from_array(np.array(v, dtype), n) for n, v in (("s", start), ("l", limit), ("d", delta))]
        return make_model([helper.make_node("Range", ["s", "l", "d"], ["y"])], [], [vi("y", ["n"], TensorProto.INT64
                                                                                          if dtype == np.int64 else TensorProto.FLOAT)], inits)

    np.testing.assert_array_equal(run_forward(from_onnx(range_model(10, 1, -3)))["y"].numpy(), [10, 7, 4])
    np.testing.assert_array_equal(run_forward(from_onnx(range_model(1, 10, -3)))["y"].numpy(), np.zeros(0))
    got = run_forward(from_onnx(range_model(0.5, 2.0, 0.5, np.float32)))["y"].numpy()
    np.testing.assert_array_equal(got, np.array([0.5, 1.0, 1.5], np.float32))
    with pytest.raises(InvalidModel, match="over the program's memory limit"):
        from_onnx(range_model(0, 2**62, 1))
    with pytest.raises(InvalidModel, match="no finite count"):
        from_onnx(range_model(0, 5, 0))
    with pytest.raises(InvalidModel, match="no finite count"):
        from_onnx(range_model(0.0, np.inf, 1.0, np.float32))


def test_onnx_refusals_of_new_operator_forms():
    """Forms of the newly supported operators that the VM cannot express exactly or that are
    malformed give bcai errors naming them."""
    x = vi("x", [2, 3], TensorProto.INT64)
    l2 = helper.make_node("ReduceL2", ["x"], ["y"], keepdims=0)
    with pytest.raises(UnsupportedOperators, match="ReduceL2 on int64"):
        from_onnx(make_model([l2], [x], [vi("y", [], TensorProto.INT64)]))
    size = helper.make_node("Size", ["x"], ["y"])
    with pytest.raises(UnsupportedOperators, match="Size of 'x', whose shape is not static"):
        from_onnx(make_model([size], [vi("x", ["n", 3])], [vi("y", [], TensorProto.INT64)]))
    axis = numpy_helper.from_array(np.array(5, np.int64), "axis")
    cumsum = helper.make_node("CumSum", ["x", "axis"], ["y"])
    with pytest.raises(InvalidModel, match="axis 5 is out of range for rank 2"):
        from_onnx(make_model([cumsum], [vi("x", [2, 3])], [vi("y", [2, 3])], [axis]))
    shift = helper.make_node("BitShift", ["x", "x"], ["y"], direction="UP")
    u8 = vi("x", [2], TensorProto.UINT8)
    with pytest.raises(InvalidModel):
        from_onnx(make_model([shift], [u8], [vi("y", [2], TensorProto.UINT8)]))


@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("exclusive", [0, 1])
def test_onnx_cumsum_directions_match_the_reference(reverse, exclusive):
    from onnx.reference import ReferenceEvaluator

    x = np.arange(1, 25, dtype=np.int32).reshape(2, 3, 4)
    axis = numpy_helper.from_array(np.array(-2, np.int64), "axis")
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], reverse=reverse, exclusive=exclusive)
    model = make_model([node], [vi("x", [2, 3, 4], TensorProto.INT32)], [vi("y", [2, 3, 4], TensorProto.INT32)],
                       [axis])
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = run_forward(from_onnx(model), x=torch.from_numpy(x))["y"].numpy()
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


def test_onnx_integer_and_bool_constants_fold_and_hostile_broadcasts_are_refused():
    """Masks and shape arithmetic on constants (Equal, Not, Where, Mod, Neg ...) fold at
    compile time; a broadcast of constants larger than the memory limit is refused first."""
    heads = numpy_helper.from_array(np.array([4], np.int64), "heads")
    kv = numpy_helper.from_array(np.array([2], np.int64), "kv")
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    nodes = [helper.make_node("Equal", ["heads", "kv"], ["same"]), helper.make_node("Not", ["same"], ["grouped"]),
             helper.make_node("Mod", ["kv", "heads"], ["rem"]), helper.make_node("Neg", ["one"], ["neg"]),
             helper.make_node("Where", ["grouped", "heads", "one"], ["rows"]),
             helper.make_node("Concat", ["rows", "neg", "rem"], ["shape"], axis=0),  # [4, -1, 2]
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = make_model(nodes, [vi("x", [2, 4])], [vi("y", [4, 1, 2])], [heads, kv, one])
    program = from_onnx(model)
    assert [type(i).__name__ for i in program.entries[0].body] == ["TensorOp"]  # only the reshape is left
    x = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    assert torch.equal(run_forward(program, x=x)["y"], x.reshape(4, 1, 2))
    column = numpy_helper.from_array(np.zeros((100, 1), np.int64), "c")
    row = numpy_helper.from_array(np.zeros((1, 100), np.int64), "r")
    wide = make_model([helper.make_node("Equal", ["c", "r"], ["y"])], [], [vi("y", [100, 100], TensorProto.BOOL)],
                      [column, row])
    with pytest.raises(InvalidModel, match="over the program's memory limit"):
        from_onnx(wide, limits=Limits(max_memory_bytes=40_000))


def test_onnx_float16_softmax_is_its_function_body_in_float16():
    """Softmax on float16 is ONNX's function body, Exp(x - ReduceMax) / ReduceSum, each op
    rounded to float16 (as the reference computes it; torch's fused kernel rounds once and
    lands an ulp away). Sums accumulate in float32, as numpy's do over the last axis."""
    elem, dtype = TensorProto.FLOAT16, torch.float16
    from onnx.backend.test.runner import Runner
    from onnx.reference import ReferenceEvaluator

    x = (np.random.default_rng(3).standard_normal((4, 7, 6)) * 4).astype(np.float32)
    cast = helper.make_node("Cast", ["x"], ["h"], to=elem)
    softmax = helper.make_node("Softmax", ["h"], ["s"], axis=1)
    back = helper.make_node("Cast", ["s"], ["y"], to=TensorProto.FLOAT)
    model = make_model([cast, softmax, back], [vi("x", [4, 7, 6])], [vi("y", [4, 7, 6])], opset=18)
    got = run_forward(from_onnx(model), x=torch.from_numpy(x))["y"]
    h = torch.from_numpy(x).to(dtype)
    exps = torch.exp(h - h.amax(1, keepdim=True))
    assert torch.equal(got, (exps / exps.sum(1, keepdim=True)).float())
    last = make_model([cast, helper.make_node("Softmax", ["h"], ["s"], axis=-1), back], [vi("x", [4, 7, 6])],
                      [vi("y", [4, 7, 6])], opset=18)
    (expected,) = ReferenceEvaluator(last).run(None, {"x": x})
    got = run_forward(from_onnx(last), x=torch.from_numpy(x))["y"].numpy()
    Runner.assert_similar_outputs([expected], [got], 1e-3, 1e-7)


@pytest.mark.parametrize("op,attrs,opset", [("MeanVarianceNormalization", {}, 13), ("ThresholdedRelu", {"alpha": 0.5}, 22),
                                            ("Shrink", {"lambd": 0.7, "bias": 0.2}, 18), ("Mish", {}, 22)])
def test_onnx_function_ops_run_as_their_function_body(op, attrs, opset):
    """Operators without a VM lowering of their own run as the schema's function body; the
    body reads defaulted attributes (MeanVarianceNormalization's axes) by reference."""
    from onnx.reference import ReferenceEvaluator

    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5)).astype(np.float32)
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [vi("x", [2, 3, 4, 5])], [vi("y", [2, 3, 4, 5])],
                       opset=opset)
    program = from_onnx(model)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_allclose(run_forward(program, x=torch.from_numpy(x))["y"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_onnx_function_op_without_a_body_at_the_model_opset_is_refused():
    model = make_model([helper.make_node("Shrink", ["x"], ["y"])], [vi("x", [3])], [vi("y", [3])], opset=9)
    with pytest.raises(UnsupportedOperators, match="Shrink at opset 9"):
        from_onnx(model)


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, -1), (13, 1), (13, 0)])
def test_onnx_hardmax_marks_the_first_maximum(opset, axis):
    """Along the axis from opset 13; before, over the input coerced to 2-D at the axis (the
    spec's Hardmax-11, which onnx's ReferenceEvaluator does not implement)."""
    x = np.random.default_rng(6).integers(0, 3, (2, 3, 4)).astype(np.float32)  # ties on purpose
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], axis=axis)], [vi("x", [2, 3, 4])],
                       [vi("y", [2, 3, 4])], opset=opset)
    rows = x.reshape(int(np.prod(x.shape[:axis % 3])), -1) if opset < 13 else np.moveaxis(x, axis, -1)
    first = np.eye(rows.shape[-1], dtype=np.float32)[rows.argmax(-1)]  # argmax picks the first maximum
    expected = first.reshape(x.shape) if opset < 13 else np.moveaxis(first, -1, axis)
    np.testing.assert_array_equal(run_forward(from_onnx(model), x=torch.from_numpy(x))["y"].numpy(), expected)


def test_onnx_one_hot_eye_like_compress_lp_normalization_refusals():
    """Hostile sizes are refused before allocating; malformed attributes are InvalidModel; a
    Compress condition computed at run time is a constant the model must be bound to."""
    idx = vi("i", [3], TensorProto.INT64)
    values = numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "v")
    for depth, error in ((2**40, "over the program's memory limit"), (0, "depth 0")):
        d = numpy_helper.from_array(np.array(depth, np.int64), "d")
        model = make_model([helper.make_node("OneHot", ["i", "d", "v"], ["y"])], [idx], [vi("y", [3, "n"])], [d, values])
        with pytest.raises(InvalidModel, match=error):
            from_onnx(model)
    big = make_model([helper.make_node("EyeLike", ["x"], ["y"])], [vi("x", [10**6, 10**6])], [vi("y", [10**6, 10**6])])
    with pytest.raises(InvalidModel, match="over the program's memory limit"):
        from_onnx(big)
    lp = make_model([helper.make_node("LpNormalization", ["x"], ["y"], p=3)], [vi("x", [2, 3])], [vi("y", [2, 3])])
    with pytest.raises(InvalidModel, match="p must be 1 or 2"):
        from_onnx(lp)
    compress = make_model([helper.make_node("Compress", ["x", "c"], ["y"], axis=1)],
                          [vi("x", [2, 3]), vi("c", [3], TensorProto.BOOL)], [vi("y", [2, "n"])])
    with pytest.raises(ConstantInputNeeded, match="Compress"):
        from_onnx(compress)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    program = from_onnx(compress, bind={"c": np.array([True, False, True])})
    np.testing.assert_array_equal(run_forward(program, x=torch.from_numpy(x))["y"].numpy(), x[:, [0, 2]])


@pytest.mark.parametrize("k", [-1, 5])
def test_onnx_top_k_out_of_range_is_invalid(k):
    kk = numpy_helper.from_array(np.array([k], np.int64), "k")
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"])
    model = make_model([node], [vi("x", [2, 4])], [vi("v", [2, "n"]), vi("i", [2, "n"], TensorProto.INT64)], [kk])
    with pytest.raises(InvalidModel, match=f"k={k} for an axis of size 4"):
        from_onnx(model)


def _resize_model(attrs, roi=None, scales=None, sizes=None, shape=(1, 2, 5, 6), opset=19):
    inits, names = [], ["x"]
    for name, value, dtype in (("roi", roi, np.float32), ("scales", scales, np.float32), ("sizes", sizes, np.int64)):
        names.append(name if value is not None else "")
        if value is not None:
            inits.append(numpy_helper.from_array(np.array(value, dtype), name))
    while names[-1] == "":
        names.pop()
    node = helper.make_node("Resize", names, ["y"], **attrs)
    return make_model([node], [vi("x", list(shape))], [vi("y", ["a", "b", "c", "d"])], inits, opset=opset)


@pytest.mark.parametrize("attrs,inputs", [
    ({"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize"},
     {"roi": [0, 0, -0.2, 0.3, 1, 1, 0.9, 1.4], "sizes": [1, 2, 4, 7]}),  # extrapolated samples are 0
    ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -3.0},
     {"roi": [0.1, -0.5, 1.2, 0.8], "sizes": [3, 9], "axes": [2, 3]}),
    ({"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, {"scales": [1, 1, 1.7, 0.6]}),
    ({"mode": "linear", "antialias": 1}, {"sizes": [2, 3], "axes": [3, 2]}),
    ({"mode": "nearest", "nearest_mode": "ceil", "coordinate_transformation_mode": "asymmetric"},
     {"scales": [1, 1, 2.5, 0.5]}),
])
def test_onnx_resize_matches_the_reference(attrs, inputs):
    from onnx.reference import ReferenceEvaluator

    inputs = dict(inputs)
    if "axes" in inputs:
        attrs = {**attrs, "axes": inputs.pop("axes")}
    model = _resize_model(attrs, **inputs)
    x = np.random.default_rng(8).standard_normal((1, 2, 5, 6)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = run_forward(from_onnx(model), x=torch.from_numpy(x))["y"].numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_onnx_resize_refusals():
    with pytest.raises(InvalidModel, match=r"a 100000 x 5 interpolation matrix is over the program's memory limit"):
        from_onnx(_resize_model({"mode": "linear"}, sizes=[1, 2, 10**5, 10**5]), limits=Limits(max_memory_bytes=10**6))
    with pytest.raises(InvalidModel, match="positive and finite"):
        from_onnx(_resize_model({"mode": "linear"}, scales=[1, 1, -2, 2]))
    with pytest.raises(InvalidModel, match="exactly one of scales and sizes"):
        from_onnx(_resize_model({"mode": "linear"}, scales=[1, 1, 2, 2], sizes=[1, 2, 10, 12]))
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    resize10 = make_model([helper.make_node("Resize", ["x", "s"], ["y"])], [vi("x", [1, 1, 2, 2])],
                          [vi("y", [1, 1, 4, 4])], [scales], opset=10)
    with pytest.raises(UnsupportedOperators, match="before opset 11"):
        from_onnx(resize10)
    with pytest.raises(UnsupportedOperators, match="static float tensors"):
        from_onnx(_resize_model({"mode": "nearest"}, scales=[1, 1, 2, 2], shape=("n", 2, 5, 6)))
    computed = make_model([helper.make_node("Resize", ["x", "", "s"], ["y"])],
                          [vi("x", [1, 1, 2, 2]), vi("s", [4])], [vi("y", ["a", "b", "c", "d"])], opset=19)
    with pytest.raises(ConstantInputNeeded):
        from_onnx(computed)
