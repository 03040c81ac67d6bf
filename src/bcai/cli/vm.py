"""`bcai vm`: compile models into VM programs, run programs, list hardware backends."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import typer
from rich.table import Table

from bcai.cli.files import write_file, write_npy
from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError, ConfigError, InvalidModel

if TYPE_CHECKING:
    from bcai.vm.program import Program

# bcai.vm imports torch (seconds); it is imported inside the commands so that other
# `bcai` commands start fast.

app = typer.Typer(help="The ML virtual machine: compile models to programs and run them.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print one JSON object.")


def _compile(onnx_file: Optional[Path], bml_file: Optional[Path], torch_factory: Optional[str],
             example_shape: Optional[str]) -> Program:
    chosen = [s for s in (onnx_file, bml_file, torch_factory) if s is not None]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --onnx FILE, --bml FILE or --torch module:factory")
    if onnx_file is not None:
        from bcai.vm.frontends.onnx import from_onnx
        return from_onnx(onnx_file)
    if bml_file is not None:
        from bcai.vm.frontends.bml import from_bml
        return from_bml(bml_file)
    import torch

    from bcai.vm.frontends.torch_fx import compile_torch
    module_name, _, attr = (torch_factory or "").partition(":")
    if not module_name or not attr:
        raise ConfigError("--torch takes module:factory, e.g. mypkg.models:make_model")
    if example_shape is None:
        raise ConfigError("--torch needs --example-shape, e.g. 1,784")
    try:
        shape = tuple(int(d) for d in example_shape.split(","))
    except ValueError:
        raise ConfigError(f"--example-shape must be comma-separated ints, got {example_shape!r}") from None
    sys.path.insert(0, str(Path.cwd()))
    try:
        factory = getattr(importlib.import_module(module_name), attr)
        module = factory()
    except Exception as exc:  # importing user code can raise anything
        raise InvalidModel(f"cannot build the module from {torch_factory}: {exc}") from None
    finally:
        sys.path.pop(0)
    if not isinstance(module, torch.nn.Module):
        raise InvalidModel(f"{torch_factory} returned {type(module).__name__}, not a torch.nn.Module")
    return compile_torch(module.eval(), torch.zeros(shape))


@app.command("compile")
def compile_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the program (canonical CBOR)."),
    onnx_file: Optional[Path] = typer.Option(None, "--onnx", help="An ONNX model file."),
    bml_file: Optional[Path] = typer.Option(None, "--bml", help="A BML (YAML) job file."),
    torch_factory: Optional[str] = typer.Option(None, "--torch", help="module:factory returning a torch.nn.Module."),
    example_shape: Optional[str] = typer.Option(None, "--example-shape", help="Input shape for --torch, e.g. 1,784."),
    as_json: bool = JsonOption,
) -> None:
    """Compile an ONNX model, a BML job or a torch module into a VM program.

    Example: bcai vm compile --bml examples/bml/digits_cnn.yaml -o digits.bcvm
    """
    from bcai.vm.program import compute_program_cid, encode_program

    try:
        program = _compile(onnx_file, bml_file, torch_factory, example_shape)
        data = encode_program(program)
        write_file(output, data)
    except BcaiError as e:
        fail(e, as_json)
    except OSError as e:
        fail(ConfigError(f"cannot write {output}: {e}"), as_json)
    info: dict[str, Any] = {"program": str(output), "cid": str(compute_program_cid(program)), "bytes": len(data),
            "entries": list(program.entry_names), "init_instructions": len(program.init),
            "parameters": len(program.parameters)}
    if as_json:
        emit_json(info)
    else:
        console.print(f"wrote {output} ({len(data)} bytes)\n  cid      {info['cid']}\n"
                      f"  entries  {', '.join(info['entries'])}\n  state    {len(program.init)} tensors, "
                      f"{len(program.parameters)} parameters")


def _parse_inputs(items: list[str]) -> dict[str, np.ndarray]:
    feeds = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--input takes NAME=FILE.npy, got {item!r}")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path} as a .npy array: {exc}") from None
    return feeds


@app.command("run")
def run_cmd(
    program_file: Path = typer.Argument(..., help="A program written by `bcai vm compile`."),
    inputs: list[str] = typer.Option([], "--input", help="NAME=FILE.npy (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory to write outputs as NAME.npy."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps (or wgpu: reported unavailable)."),
    entry: Optional[str] = typer.Option(None, "--entry", help="Entry to run (default: the only one, or forward)."),
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic mode (bitwise replayable)."),
    as_json: bool = JsonOption,
) -> None:
    """Run a program entry on inputs; write outputs as .npy and print metrics.

    Example: bcai vm run model.bcvm --input x=batch.npy --out results --json
    """
    from bcai.vm.interpreter import VM
    from bcai.vm.program import compute_program_cid, decode_program

    try:
        try:
            data = program_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {program_file}: {exc}") from None
        program = decode_program(data)
        feeds = _parse_inputs(inputs)
        outputs, metrics = VM(device, deterministic=deterministic).run(program, feeds, entry)
        written = {}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for name, tensor in outputs.items():
                path = out / f"{name.replace('/', '_')}.npy"
                write_npy(path, tensor.cpu().numpy())
                written[name] = str(path)
    except BcaiError as e:
        fail(e, as_json)
    summary: dict[str, dict[str, Any]] = {name: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for name, t in outputs.items()}
    if as_json:
        emit_json({"cid": str(compute_program_cid(program)), "outputs": summary, "files": written,
                   "metrics": metrics.to_dict()})
        return
    table = Table("output", "shape", "dtype", "file")
    for name, s in summary.items():
        table.add_row(name, str(s["shape"]), s["dtype"], written.get(name, ""))
    console.print(table)
    m = metrics
    console.print(f"instructions {m.instructions}  flops {m.flops}  gas {m.gas}  "
                  f"peak tensor bytes {m.peak_tensor_bytes}  wall {m.wall_time_s * 1e3:.2f} ms")


@app.command("devices")
def devices_cmd(as_json: bool = JsonOption) -> None:
    """List the hardware backends and whether this node has them."""
    from bcai.vm.backends import detect_backends

    infos = detect_backends()
    if as_json:
        emit_json({"backends": [{"name": i.name, "available": i.available, "detail": i.detail} for i in infos]})
        return
    table = Table("backend", "available", "detail")
    for i in infos:
        table.add_row(i.name, "yes" if i.available else "no", i.detail)
    console.print(table)
