"""`bcai sandbox`: run untrusted Python or WASM under the sandboxes' limits.

Exit status 0 only when the run succeeded; a sandbox error exits with its class's exit
code (1), a bad invocation with 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from typing import NoReturn

from bcai.cli.files import write_file, write_npy
from bcai.cli.output import compute_terminal_markup, compute_terminal_text, console, emit_json, err_console, print_error
from bcai.errors import BcaiError, ConfigError, SANDBOX_ERRORS
from bcai.sandbox.python import PythonConstraints, PythonSandbox
from bcai.sandbox.result import ExecutionResult
from bcai.sandbox.wasm import PRESETS, WasmEngine, get_preset

app = typer.Typer(help="Run untrusted Python or WASM code in a sandbox.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print one JSON object.")
MAX_SOURCE_BYTES = 16 * 1024 * 1024


def fail(error: BcaiError, as_json: bool) -> NoReturn:
    """A bad invocation: same JSON shape as a run (status, error_kind, metrics), exit 2."""
    if as_json:
        emit_json({"status": "error", "error_kind": error.code, "message": str(error), "metrics": None,
                   "error": error.to_dict()})
    else:
        print_error(error)
    raise typer.Exit(error.exit_code)


def _read_file(path: Path, what: str, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise ConfigError(f"{what} {path} is over {limit} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def _parse_inputs(specs: List[str]) -> dict[str, np.ndarray]:
    inputs: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise ConfigError(f"--input {spec!r}: expected NAME=FILE.npy")
        if name in inputs:
            raise ConfigError(f"--input {name!r} given twice")
        try:
            inputs[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--input {name}: {file} is not a readable .npy array ({exc})") from None
        if not isinstance(inputs[name], np.ndarray):
            raise ConfigError(f"--input {name}: {file} holds an archive, not one array")
    return inputs


def _finish(result: ExecutionResult, as_json: bool, extra: dict[str, object]) -> None:
    if as_json:
        # a failed run also carries the `error` object every other command's JSON failure has
        error = {} if result.ok else {"error": {"code": SANDBOX_ERRORS[result.error_kind or "crashed"].code,
                                                "message": result.message}}
        emit_json({**result.to_dict(), **extra, **error})
    else:
        m = result.metrics
        fuel = f", fuel {m.fuel_used}" if m.fuel_used is not None else ""
        if result.ok:
            console.print(f"ok in {m.wall_time_ms:.1f} ms (cpu {m.cpu_time_ms:.1f} ms, peak {m.peak_memory_bytes >> 20} MiB{fuel})")
            for name, value in result.to_dict()["outputs"].items():
                console.print(f"  {name}: {value}")
            if result.output_sha256:
                console.print(f"  output sha256 {result.output_sha256}")
        else:
            err_console.print(f"[bold red]{result.error_kind}[/]: {compute_terminal_markup(result.message)}  ({m.wall_time_ms:.1f} ms{fuel})")
        if result.log:
            console.print(compute_terminal_text(result.log), end="", markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(SANDBOX_ERRORS[result.error_kind or "crashed"].exit_code)


@app.command("python")
def python(
    file: Path = typer.Argument(..., help="The Python program (reads `inputs`, fills `outputs` or defines main(inputs))."),
    input: List[str] = typer.Option([], "--input", help="NAME=FILE.npy; repeat for several inputs."),
    max_memory_mb: int = typer.Option(256, "--max-memory-mb", help="Memory on top of the interpreter and inputs."),
    timeout_ms: int = typer.Option(5000, "--timeout-ms", help="Wall-clock (and CPU-time) limit."),
    allow_import: List[str] = typer.Option([], "--allow-import", help="Extra module the program may import; repeatable."),
    max_file_ops: int = typer.Option(0, "--max-file-ops", help="File operations allowed inside the private work dir."),
    network: bool = typer.Option(False, "--network", help="Grant network access."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Save each output as NAME.npy here."),
    as_json: bool = JsonOption,
) -> None:
    """Run FILE in a fresh sandboxed Python process.

    Example: bcai sandbox python double.py --input x=x.npy --json
    """
    try:
        code = _read_file(file, "program", MAX_SOURCE_BYTES).decode("utf-8")
        inputs = _parse_inputs(input)
        constraints = PythonConstraints(
            max_memory_mb=max_memory_mb,
            max_execution_time_ms=timeout_ms,
            allowed_imports=frozenset(allow_import),
            max_file_operations=max_file_ops,
            network_access=network,
        )
        with PythonSandbox() as sandbox:
            result = sandbox.run(code, inputs, constraints)
        if output_dir is not None and result.ok:
            output_dir.mkdir(parents=True, exist_ok=True)
            for name, value in result.outputs.items():
                write_npy(output_dir / f"{name}.npy", value)
    except UnicodeDecodeError:
        fail(ConfigError(f"program {file} is not UTF-8 text"), as_json)
    except BcaiError as exc:
        fail(exc, as_json)
    _finish(result, as_json, {})


@app.command("wasm")
def wasm(
    module: Path = typer.Argument(..., help="A .wasm binary or .wat text module."),
    entry: str = typer.Option("run", "--entry", help="Exported function to call (no params; returns nothing or i32)."),
    input: Optional[Path] = typer.Option(None, "--input", help="File whose bytes the module reads with bcai.read_input."),
    preset: str = typer.Option("default", "--preset", help=f"Limits preset: {' | '.join(PRESETS)}."),
    purpose: str = typer.Option("evaluation", "--purpose", help="Output cap: evaluation (64 MB) or task (16 MB)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the module's output bytes here."),
    as_json: bool = JsonOption,
) -> None:
    """Run a WASM module with fuel, a wall-clock deadline and memory limits; no WASI.

    Example: bcai sandbox wasm score.wat --input submission.bin --preset strict --json
    """
    try:
        limits = get_preset(preset)
        if purpose not in ("evaluation", "task"):
            raise ConfigError(f"--purpose must be evaluation or task, not {purpose!r}")
        if purpose == "task":
            limits = limits.for_task()
        source = _read_file(module, "module", 64 * 1024 * 1024)
        data = _read_file(input, "input", limits.max_input_bytes) if input is not None else b""
        result = WasmEngine().execute(source, data, entry=entry, limits=limits)
        if output is not None and result.ok:
            write_file(output, result.outputs["output"])
    except BcaiError as exc:
        fail(exc, as_json)
    _finish(result, as_json, {"preset": preset, "output_bytes": len(result.outputs.get("output", b""))})
