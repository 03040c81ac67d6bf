"""`bcai vm compile / run / devices`."""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from bcai.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bml"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_compile_bml_and_run_forward(tmp_path):
    program = tmp_path / "digits.bcvm"
    result = invoke("vm", "compile", "--bml", str(EXAMPLES / "digits_cnn.yaml"), "-o", str(program), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["cid"].startswith("bafyrei") and info["entries"] == ["forward", "train_step", "evaluate", "compute_gradients", "apply_gradients"]
    np.save(tmp_path / "x.npy", np.random.rand(5, 1, 8, 8).astype(np.float32))
    result = invoke("vm", "run", str(program), "--input", f"x={tmp_path / 'x.npy'}", "--out", str(tmp_path / "out"),
                    "--device", "cpu", "--deterministic", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["outputs"]["logits"]["shape"] == [5, 10]
    assert report["metrics"]["instructions"] > 0 and report["metrics"]["gas"] > 0
    assert np.load(tmp_path / "out" / "logits.npy").shape == (5, 10)


def test_compile_torch_factory_and_onnx(tmp_path, monkeypatch):
    (tmp_path / "bcai_cli_models.py").write_text(
        "import torch.nn as nn\n\ndef make():\n    return nn.Sequential(nn.Linear(784, 10))\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("vm", "compile", "--torch", "bcai_cli_models:make", "--example-shape", "1,784", "-o", "lin.bcvm")
    sys.modules.pop("bcai_cli_models", None)
    assert result.exit_code == 0, result.output
    np.save("x.npy", np.ones((2, 784), dtype=np.float32))
    result = invoke("vm", "run", "lin.bcvm", "--input", "x=x.npy", "--out", "res")
    assert result.exit_code == 0, result.output
    assert np.load("res/y.npy").shape == (2, 10)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Sigmoid()), (torch.zeros(1, 3),), buf,
                          dynamo=False, input_names=["x"], output_names=["y"])
    Path("m.onnx").write_bytes(buf.getvalue())
    result = invoke("vm", "compile", "--onnx", "m.onnx", "-o", "m.bcvm", "--json")
    assert result.exit_code == 0, result.output


def test_devices_lists_wgpu_unavailable():
    result = invoke("vm", "devices", "--json")
    assert result.exit_code == 0
    backends = {b["name"]: b for b in json.loads(result.output)["backends"]}
    assert backends["cpu"]["available"] and not backends["wgpu"]["available"]


def test_invalid_cli_inputs(tmp_path):
    result = invoke("vm", "compile", "-o", str(tmp_path / "p"), "--json")
    assert result.exit_code == 2 and "exactly one" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("bml: 1\nmodel: {template: nope}\n")
    result = invoke("vm", "compile", "--bml", str(bad), "-o", str(tmp_path / "p"), "--json")
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "vm_invalid_bml"
    garbage = tmp_path / "garbage.bcvm"
    garbage.write_bytes(b"\x01\x02")
    result = invoke("vm", "run", str(garbage), "--json")
    assert result.exit_code == 3 and json.loads(result.output)["error"]["code"] == "vm_malformed_program"
    program = tmp_path / "d.bcvm"
    invoke("vm", "compile", "--bml", str(EXAMPLES / "digits_mlp.yaml"), "-o", str(program))
    result = invoke("vm", "run", str(program), "--input", "x", "--json")
    assert result.exit_code == 2 and "NAME=FILE.npy" in result.output
    result = invoke("vm", "run", str(program), "--device", "wgpu", "--json")
    assert result.exit_code == 4 and json.loads(result.output)["error"]["code"] == "vm_device_unavailable"
    np.save(tmp_path / "x.npy", np.ones((2, 3), dtype=np.float32))
    result = invoke("vm", "run", str(program), "--input", f"x={tmp_path / 'x.npy'}", "--json")
    assert result.exit_code == 3 and json.loads(result.output)["error"]["code"] == "vm_invalid_feed"
