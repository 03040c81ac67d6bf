"""Programs: encoding and content ids, validation errors, limits, metrics, state, backends."""

from __future__ import annotations

import dataclasses

import cbor2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_harness import feed_program

import bcai.vm
from bcai.encoding import decode, encode
from bcai.errors import (DeviceUnavailable, DtypeMismatch, ExecutionFailed, GasExhausted, InvalidFeed, InvalidProgram,
                         MalformedProgram, MemoryLimitExceeded, PythonBridgeUnavailable, ShapeMismatch,
                         UndefinedTensor, UnknownInstruction, VMError)
from bcai.vm import (VM, Entry, Limits, Program, PythonConstraints, TensorSpec, compute_program_cid,
                     decode_program, detect_backends, encode_program, isa, select_backend)
from bcai.vm.gas import GAS_PER_INSTRUCTION, compute_gas

X = TensorSpec("x", (-1, 4))


def linear_program(**kwargs) -> Program:
    init = (isa.TensorCreate("w", (3, 4), init="uniform", a=-0.5, b=0.5, requires_grad=True),
            isa.TensorCreate("b", (3,), requires_grad=True))
    body = (isa.Linear("x", "w", "b", "h"), isa.ReLU("h", "y"))
    kwargs.setdefault("parameters", ("w", "b"))
    return Program(init=init, entries=(Entry("forward", (X,), body, ("y",)),), **kwargs)


def sample_instructions() -> list[isa.Instruction]:
    """One instance of every instruction kind (for encoding tests)."""
    out = []
    for cls in isa.INSTRUCTIONS.values():
        if cls is isa.TensorCreate:
            out.append(isa.TensorCreate("t", (2, 3), "float16", "data", data=bytes(12)))
        elif cls is isa.TensorOp:
            out.append(isa.TensorOp("sum", ("a",), "o", dims=(0, 1), keepdim=True))
        elif cls is isa.PythonExecute:
            out.append(isa.PythonExecute("y = x * 2", ("x",), (TensorSpec("y", (-1, 2)),),
                                         PythonConstraints(64, 500, ("numpy",), 0, False)))
        else:
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    kwargs[f.name] = {"Id": "i", "OptId": "j", "Ids": ("p", "q"), "Ints": (1, 1), "Int": 2,
                                      "Dec": 0.5, "Dtype": "float32", "Str": "mean", "Bool": True}[str(f.type)]
            out.append(cls(**kwargs))
    return out


def test_every_instruction_round_trips_through_canonical_encoding():
    instrs = sample_instructions()
    assert {type(i) for i in instrs} == set(isa.INSTRUCTIONS.values())
    program = Program(init=(), entries=(Entry("e", (X,), tuple(instrs), ()),))
    data = encode_program(program)
    assert decode_program(data) == program
    assert encode_program(decode_program(data)) == data


def test_program_cid_is_dag_cbor_of_canonical_bytes_and_changes_with_content():
    p = linear_program()
    cid = compute_program_cid(p)
    assert str(cid).startswith("bafyrei") and cid.codec_name == "dag-cbor"
    assert cid.matches(encode_program(p))
    assert compute_program_cid(linear_program()) == cid
    assert compute_program_cid(linear_program(seed=1)) != cid


def test_hyperparameters_are_canonical_decimal_strings():
    step = isa.AdamStep(("w",), ("g",), ("m",), ("v",), ("s",), lr=0.001)
    assert step.lr == "0.001" and step.eps == "1e-08"
    assert isa.AdamStep(("w",), ("g",), ("m",), ("v",), ("s",), lr="1e-3") == step
    assert isa.Dropout("x", "y", 1).p == "1.0"
    encode(step.to_obj())  # no floats anywhere


def test_invalid_malformed_encoding():
    with pytest.raises(MalformedProgram, match="canonical CBOR"):
        decode_program(b"\xff\x00garbage")
    with pytest.raises(MalformedProgram, match="canonical CBOR"):
        decode_program(cbor2.dumps({"version": 1.5}))  # floats are not canonical objects
    obj = linear_program().to_obj()
    obj["entries"][0]["body"][0]["weight"] = 7
    with pytest.raises(MalformedProgram, match="Linear.weight"):
        decode_program(encode(obj))
    obj = linear_program().to_obj()
    del obj["limits"]
    with pytest.raises(MalformedProgram, match="missing"):
        decode_program(encode(obj))
    obj = linear_program().to_obj()
    obj["entries"][0]["body"][0]["extra"] = 1
    with pytest.raises(MalformedProgram, match="unknown field"):
        decode_program(encode(obj))
    obj = linear_program().to_obj()
    obj["version"] = 99
    with pytest.raises(MalformedProgram, match="version"):
        decode_program(encode(obj))
    obj = linear_program().to_obj()
    obj["training"] = {"epochs": 1, "batch_size": 0, "dataset": None, "train_entry": "t", "eval_entry": "e",
                       "feature_input": "x", "label_input": "y"}
    with pytest.raises(MalformedProgram, match="batch_size"):
        decode_program(encode(obj))
    obj["training"]["batch_size"], obj["training"]["dataset"] = 8, 5
    with pytest.raises(MalformedProgram, match="dataset"):
        decode_program(encode(obj))
    obj = linear_program().to_obj()
    obj["init"][0]["dtype"] = "complex64"
    with pytest.raises(MalformedProgram, match="dtype"):
        decode_program(encode(obj))


def test_invalid_unknown_op():
    obj = linear_program().to_obj()
    obj["entries"][0]["body"][1]["op_kind"] = "FlashAttention9"
    with pytest.raises(UnknownInstruction, match="FlashAttention9"):
        decode_program(encode(obj))
    with pytest.raises(UnknownInstruction, match="frobnicate"):
        isa.TensorOp("frobnicate", ("a",), "b")


def test_invalid_undefined_id():
    p = feed_program([isa.ReLU("x", "h"), isa.Linear("h", "w", None, "y")], [X], ["y"])
    with pytest.raises(UndefinedTensor, match=r"entry 'main' instruction 1 \(Linear\): reads tensor id 'w'"):
        VM("cpu").load(p)
    p = feed_program([isa.ReLU("x", "h")], [X], ["nowhere"])
    with pytest.raises(UndefinedTensor, match="nowhere"):
        VM("cpu").load(p)


def test_invalid_id_defined_twice_and_state_rules():
    p = feed_program([isa.ReLU("x", "h"), isa.Tanh("x", "h")], [X], ["h"])
    with pytest.raises(InvalidProgram, match=r"instruction 1 \(Tanh\).*already defined"):
        VM("cpu").load(p)
    p = feed_program([isa.SGDStep(("x",), ("x",), 0.1)], [X], [])
    with pytest.raises(InvalidProgram, match="only state tensors"):
        VM("cpu").load(p)
    with pytest.raises(InvalidProgram, match="parameters"):
        VM("cpu").load(linear_program(parameters=("nope",)))


def test_invalid_shape_mismatch():
    init = (isa.TensorCreate("w", (3, 5)),)
    p = feed_program([isa.Linear("x", "w", None, "y")], [X], ["y"], init=init)
    with pytest.raises(ShapeMismatch, match=r"entry 'main' instruction 0 \(Linear\)"):
        VM("cpu").load(p)


def test_invalid_wrong_dtype():
    init = (isa.TensorCreate("w", (3, 4), "float64"),)
    p = feed_program([isa.Linear("x", "w", None, "y")], [X], ["y"], init=init)
    with pytest.raises(DtypeMismatch, match=r"instruction 0 \(Linear\)"):
        VM("cpu").load(p)
    p = feed_program([isa.CrossEntropyLoss("x", "t", "l")], [X, TensorSpec("t", (-1,), "float32")], ["l"])
    with pytest.raises((DtypeMismatch, ShapeMismatch), match="CrossEntropyLoss"):
        VM("cpu").load(p)


def test_invalid_feeds():
    session = VM("cpu").load(linear_program())
    with pytest.raises(InvalidFeed, match="missing"):
        session.run("forward", {})
    with pytest.raises(InvalidFeed, match="shape"):
        session.run("forward", {"x": torch.zeros(2, 5)})
    with pytest.raises(InvalidFeed, match="float32"):
        session.run("forward", {"x": torch.zeros(2, 4, dtype=torch.float64)})
    with pytest.raises(InvalidFeed, match="no entry"):
        session.run("train", {"x": torch.zeros(2, 4)})


def test_invalid_memory_limit_exceeded_before_anything_runs():
    p = linear_program(limits=Limits(max_memory_bytes=4096, max_gas=10**12))
    session = VM("cpu").load(p)
    session.run("forward", {"x": torch.zeros(10, 4)})
    before = session.compute_state_hash()
    with pytest.raises(MemoryLimitExceeded, match=r"instruction \d \((Linear|ReLU)\).*4096"):
        session.run("forward", {"x": torch.zeros(1000, 4)})
    assert session.compute_state_hash() == before
    with pytest.raises(MemoryLimitExceeded, match="init"):
        VM("cpu").load(Program(init=(isa.TensorCreate("big", (1 << 20,)),), entries=(), limits=Limits(1 << 20, 10**12)))


def test_invalid_gas_exhausted_leaves_state_untouched():
    program = bcai.vm.compile_torch(torch.nn.Linear(4, 3), torch.zeros(1, 4), loss="cross_entropy")
    tight = dataclasses.replace(program, limits=Limits(1 << 30, 50_000))
    session = VM("cpu").load(tight)
    before = session.compute_state_hash()
    with pytest.raises(GasExhausted, match=r"entry 'train_step' instruction \d+ \(\w+\): gas \d+ exceeds"):
        session.run("train_step", {"x": torch.zeros(4096, 4), "y": torch.zeros(4096, dtype=torch.int64)})
    assert session.compute_state_hash() == before
    session.run("train_step", {"x": torch.zeros(8, 4), "y": torch.zeros(8, dtype=torch.int64)})  # a small batch fits
    assert session.compute_state_hash() != before
    assert issubclass(GasExhausted, VMError) and GasExhausted.code == "vm_gas_exhausted"


def test_invalid_node_caps_tighten_program_limits():
    with pytest.raises(MemoryLimitExceeded):
        VM("cpu", max_memory_bytes=50).load(linear_program())  # its state alone is 60 bytes
    session = VM("cpu", max_gas=5_000).load(linear_program())
    with pytest.raises(GasExhausted):
        session.run("forward", {"x": torch.ones(100, 4)})


def test_invalid_runtime_failure_names_the_instruction():
    p = feed_program([isa.Gather("x", "i", "y", axis=0)], [X, TensorSpec("i", (2,), "int64")], ["y"])
    session = VM("cpu").load(p)
    with pytest.raises(ExecutionFailed, match=r"instruction 0 \(Gather\)"):
        session.run("main", {"x": torch.ones(3, 4), "i": torch.tensor([0, 7])})  # index out of range


def test_metrics_count_instructions_flops_gas_and_peak_bytes():
    session = VM("cpu").load(linear_program())
    _, m = session.run("forward", {"x": torch.ones(5, 4)})
    linear_flops = 2 * 5 * 3 * 4 + 5 * 3
    relu_flops = 5 * 3
    assert m.instructions == 2
    assert m.flops == linear_flops + relu_flops
    assert m.gas == compute_gas(linear_flops, 60) + compute_gas(relu_flops, 60)
    state_bytes, feed_bytes = (12 + 3) * 4, 20 * 4
    # Linear's output h (60 bytes) is alive with x; x is released after its last use, so
    # ReLU's output y never coexists with x.
    assert m.peak_tensor_bytes == state_bytes + feed_bytes + 60
    assert m.wall_time_ns > 0 and m.gas > 2 * GAS_PER_INSTRUCTION


def test_temporaries_are_freed_after_last_use():
    body = [isa.ReLU("x", "a"), isa.Tanh("a", "b"), isa.Sigmoid("b", "c"), isa.Tanh("c", "d")]
    _, m = VM("cpu").run(feed_program(body, [X], ["d"]), {"x": torch.ones(100, 4)})
    one = 100 * 4 * 4
    assert m.peak_tensor_bytes == 2 * one  # every tensor is released right after its last use


def test_python_execute_runs_in_the_sandbox():
    instr = isa.PythonExecute("outputs['y'] = inputs['x'] + 1", ("x",), (TensorSpec("y", (-1, 4)),))
    p = feed_program([instr], [X], ["y"])
    out, _ = VM("cpu").run(p, {"x": torch.ones(2, 4)})  # the default bridge: bcai.sandbox
    assert torch.equal(out["y"], torch.full((2, 4), 2.0))


def test_invalid_python_execute_hostile_code_fails_with_its_sandbox_kind():
    from bcai.errors import SandboxError

    for code, kind in [("import socket", "import_denied"), ("while True: pass", "time_limit"),
                       ("outputs['y'] = inputs['x'].astype('float64')", None)]:
        constraints = PythonConstraints(max_execution_time_ms=1_000)
        instr = isa.PythonExecute(code, ("x",), (TensorSpec("y", (-1, 4)),), constraints)
        p = feed_program([instr], [X], ["y"])
        if kind is None:  # ran, but returned the wrong dtype
            with pytest.raises(ShapeMismatch):
                VM("cpu").run(p, {"x": torch.ones(2, 4)})
            continue
        with pytest.raises(SandboxError) as info:
            VM("cpu").run(p, {"x": torch.ones(2, 4)})
        assert info.value.kind == kind


def test_python_execute_gets_no_more_than_the_node_grants():
    from bcai.errors import SandboxError, SandboxNetworkDenied
    from bcai.sandbox.vm_bridge import SandboxPythonBridge

    asks_network = PythonConstraints(allowed_imports=("socket",), network_access=True)
    instr = isa.PythonExecute("outputs['y'] = inputs['x']", ("x",), (TensorSpec("y", (-1, 4)),), asks_network)
    with pytest.raises(SandboxNetworkDenied, match="does not grant"):  # the default bridge grants no network
        VM("cpu").run(feed_program([instr], [X], ["y"]), {"x": torch.ones(2, 4)})
    # a program asking 64 GiB gets the node's ceiling: 64 MiB here, so a 200 MB buffer fails
    greedy = PythonConstraints(max_memory_mb=65_536, allowed_imports=("numpy",))
    code = "import numpy as np\nb = np.ones(200_000_000, dtype=np.uint8)\noutputs['y'] = inputs['x']"
    instr = isa.PythonExecute(code, ("x",), (TensorSpec("y", (-1, 4)),), greedy)
    with pytest.raises(SandboxError) as info:
        VM("cpu", python_bridge=SandboxPythonBridge(max_memory_mb=64)).run(feed_program([instr], [X], ["y"]),
                                                                           {"x": torch.ones(2, 4)})
    assert info.value.kind == "memory_limit"
    out, _ = VM("cpu", python_bridge=SandboxPythonBridge(max_memory_mb=1024)).run(
        feed_program([instr], [X], ["y"]), {"x": torch.ones(2, 4)})
    assert torch.equal(out["y"], torch.ones(2, 4))


def test_python_execute_through_another_bridge():
    instr = isa.PythonExecute("y = x + 1", ("x",), (TensorSpec("y", (-1, 4)),))
    p = feed_program([instr], [X], ["y"])

    class EchoBridge:  # any PythonBridge implementation can stand in for the sandbox
        def execute(self, code, inputs, constraints):
            assert code == "y = x + 1" and constraints.max_memory_mb == 256
            return {"y": inputs["x"] + 1}

    out, _ = VM("cpu", python_bridge=EchoBridge()).run(p, {"x": torch.ones(2, 4)})
    assert torch.equal(out["y"], torch.full((2, 4), 2.0))


def test_backends_detection_and_selection():
    infos = {i.name: i for i in detect_backends()}
    assert set(infos) == {"cpu", "cuda", "mps", "wgpu"}
    assert infos["cpu"].available and not infos["wgpu"].available
    assert "WGPU" in infos["wgpu"].detail
    assert select_backend("auto", ("wgpu", "cpu")).name == "cpu"
    with pytest.raises(DeviceUnavailable, match="wgpu"):
        VM("wgpu")
    with pytest.raises(DeviceUnavailable, match="none of the program's backends"):
        select_backend("auto", ("wgpu",))
    with pytest.raises(DeviceUnavailable, match="accepts only"):
        VM("cpu").load(linear_program(requirements=("cuda",)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a CPU-only node")
def test_invalid_device_cuda_absent_and_to_gpu_on_cpu():
    with pytest.raises(DeviceUnavailable, match="cuda"):
        VM("cuda")
    p = feed_program([isa.ToGPU("x", "g"), isa.ToCPU("g", "y")], [X], ["y"])
    with pytest.raises(DeviceUnavailable, match="ToGPU"):
        VM("cpu").load(p)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_to_gpu_and_back_on_cuda():  # runs where a GPU exists
    p = feed_program([isa.ToGPU("x", "g"), isa.ReLU("g", "r"), isa.ToCPU("r", "y")], [X], ["y"])
    out, _ = VM("cuda").run(p, {"x": torch.randn(3, 4)})
    assert out["y"].device.type == "cpu"


def test_state_get_set_export_import_and_hashes():
    session = VM("cpu").load(linear_program(seed=5))
    params = session.get_parameters()
    assert set(params) == {"w", "b"} and params["w"].shape == (3, 4)
    h0 = session.compute_model_hash()
    checkpoint = session.export_state()
    session.set_parameters({"w": torch.zeros(3, 4)})
    assert session.compute_model_hash() != h0
    out, _ = session.run("forward", {"x": torch.ones(2, 4)})
    assert torch.equal(out["y"], torch.zeros(2, 3))
    session.import_state(checkpoint)
    assert session.compute_model_hash() == h0
    with pytest.raises(InvalidFeed, match="shape|float32"):
        session.set_parameters({"w": torch.zeros(4, 3)})
    with pytest.raises(InvalidFeed, match="settable"):
        session.set_parameters({"zzz": torch.zeros(1)})
    with pytest.raises(MalformedProgram):
        session.import_state(b"\x00")
    # same seed, same initial values; another seed, other values
    assert VM("cpu").load(linear_program(seed=5)).compute_model_hash() == h0
    assert VM("cpu").load(linear_program(seed=6)).compute_model_hash() != h0


def test_feeds_accept_numpy_and_outputs_are_detached():
    out, _ = VM("cpu").run(linear_program(), {"x": np.ones((2, 4), dtype=np.float32)})
    assert not out["y"].requires_grad and out["y"].shape == (2, 3)


def test_scalar_numpy_feeds_stay_scalars():
    program = feed_program([isa.TensorOp("mul", ("x", "s"), "y")],
                           [TensorSpec("x", (2,)), TensorSpec("s", ())], ["y"])
    for scalar in (np.array(3.0, dtype=np.float32), np.float32(3.0)):
        out, _ = VM("cpu").run(program, {"x": np.ones(2, dtype=np.float32), "s": scalar})
        assert out["y"].tolist() == [3.0, 3.0]


def test_public_api_names():
    expected = {"VM", "Session", "Metrics", "Program", "Entry", "Limits", "TrainingPlan", "TensorSpec",
                "compile_torch", "from_onnx", "from_bml", "encode_program", "decode_program", "compute_program_cid",
                "detect_backends", "select_backend", "train_epochs", "evaluate", "Linear", "AdamStep", "PythonExecute"}
    assert expected <= set(bcai.vm.__all__)
    assert all(hasattr(bcai.vm, n) for n in bcai.vm.__all__)


def test_invalid_tensor_create_data_size():
    p = Program(init=(isa.TensorCreate("w", (2, 2), init="data", data=b"\x00" * 3),), entries=())
    with pytest.raises(ShapeMismatch, match="12|16|bytes"):
        VM("cpu").load(p)
    assert decode(encode(p.to_obj()))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.booleans())
def test_invalid_corrupted_program_bytes_give_malformed_program(position, value, cut):
    data = bytearray(encode_program(linear_program()))
    position %= len(data)
    if cut:
        data = data[:position]
    else:
        data[position] = value
    try:
        program = decode_program(bytes(data))
    except MalformedProgram:
        return
    try:  # a mutation that still decodes must load, or fail with a VMError
        VM("cpu").load(program)
    except VMError:
        pass


@settings(max_examples=40, deadline=None, derandomize=True)
@given(field=st.sampled_from(["input", "weight", "bias", "output", "op_kind"]),
       value=st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.binary(max_size=3), st.lists(st.integers(), max_size=2)))
def test_invalid_mistyped_fields_give_malformed_program(field, value):
    obj = linear_program().to_obj()
    obj["entries"][0]["body"][0][field] = value
    try:
        program = decode_program(encode(obj))
    except MalformedProgram:
        return
    try:
        VM("cpu").load(program)
    except VMError:
        pass
