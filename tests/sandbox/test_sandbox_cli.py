"""`bcai sandbox python|wasm` through the Typer app: JSON shape and exit status."""

import hashlib
import json

import numpy as np
from typer.testing import CliRunner

from bcai.cli.app import app

runner = CliRunner()


def _run(args):
    result = runner.invoke(app, ["sandbox", *args])
    return result.exit_code, result.output


def test_python_ok_json_and_saved_outputs(tmp_path):
    program = tmp_path / "double.py"
    program.write_text("outputs['y'] = inputs['x'] * 2\nprint('done')\n")
    np.save(tmp_path / "x.npy", np.arange(4.0))
    code, out = _run(["python", str(program), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "out"), "--json"])
    assert code == 0, out
    data = json.loads(out)
    assert data["status"] == "ok" and data["error_kind"] is None
    assert data["outputs"] == {"y": {"dtype": "float64", "shape": [4]}}
    assert set(data["metrics"]) >= {"wall_time_ms", "cpu_time_ms", "peak_memory_bytes"}
    assert data["log"] == "done\n"
    assert np.load(tmp_path / "out" / "y.npy").tolist() == [0.0, 2.0, 4.0, 6.0]


def test_a_programs_text_cannot_drive_the_terminal(tmp_path):
    # A hostile program's error message and log are shown to the operator: Rich markup in
    # the message raised MarkupError (a traceback instead of the result), and escape
    # sequences in either reached the terminal (OSC 52 writes the clipboard).
    raising = tmp_path / "raising.py"
    raising.write_text('print("\\x1b]52;c;cHduZWQ=\\x07 \\x1b[2J\\u202e")\nraise ValueError("[/nope] [green]ok \\x1b[8m")\n')
    code, out = _run(["python", str(raising)])
    assert code == 1, out
    assert "[/nope] [green]ok \\x1b[8m" in out
    assert "\\x1b]52;c;cHduZWQ=\\x07 \\x1b[2J\\u202e" in out
    assert "\x1b" not in out and "\u202e" not in out


def test_python_error_exits_nonzero(tmp_path):
    program = tmp_path / "loop.py"
    program.write_text("while True:\n    pass\n")
    code, out = _run(["python", str(program), "--timeout-ms", "300", "--json"])
    assert code != 0
    data = json.loads(out)
    assert (data["status"], data["error_kind"]) == ("error", "time_limit")


def test_python_flags_reach_the_constraints(tmp_path):
    program = tmp_path / "imports.py"
    program.write_text("import time\nopen('a', 'w').close()\noutputs['ok'] = 1\n")
    code, out = _run(["python", str(program), "--json"])
    assert json.loads(out)["error_kind"] == "import_denied"
    code, out = _run(["python", str(program), "--allow-import", "time", "--json"])
    assert json.loads(out)["error_kind"] == "file_ops_limit"
    code, out = _run(["python", str(program), "--allow-import", "time", "--max-file-ops", "1", "--max-memory-mb", "64", "--json"])
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_wasm_ok_json(tmp_path):
    module = tmp_path / "echo.wat"
    module.write_text(
        '(module (import "bcai" "input_len" (func $len (result i32)))'
        ' (import "bcai" "read_input" (func $read (param i32 i32 i32) (result i32)))'
        ' (import "bcai" "write_output" (func $write (param i32 i32)))'
        ' (memory (export "memory") 1)'
        ' (func (export "go") (drop (call $read (i32.const 0) (i32.const 0) (call $len)))'
        '   (call $write (i32.const 0) (call $len))))'
    )
    (tmp_path / "in.bin").write_bytes(b"payload")
    code, out = _run(["wasm", str(module), "--entry", "go", "--input", str(tmp_path / "in.bin"), "--preset", "strict", "--output", str(tmp_path / "o.bin"), "--json"])
    assert code == 0, out
    data = json.loads(out)
    assert data["status"] == "ok" and data["error_kind"] is None
    assert data["output_sha256"] == hashlib.sha256(b"payload").hexdigest()
    assert data["metrics"]["fuel_used"] > 0 and data["preset"] == "strict"
    assert (tmp_path / "o.bin").read_bytes() == b"payload"


def test_wasm_error_exits_nonzero(tmp_path):
    module = tmp_path / "bad.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0\xff")
    code, out = _run(["wasm", str(module), "--json"])
    assert code != 0
    assert json.loads(out)["error_kind"] == "invalid_module"


def test_invalid_invocations_exit_2(tmp_path):
    code, out = _run(["python", str(tmp_path / "missing.py"), "--json"])
    assert code == 2 and json.loads(out)["status"] == "error"
    program = tmp_path / "p.py"
    program.write_text("pass\n")
    assert _run(["python", str(program), "--input", "novalue", "--json"])[0] == 2
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert _run(["python", str(program), "--input", f"x={tmp_path / 'junk.npy'}", "--json"])[0] == 2
    assert _run(["python", str(program), "--max-memory-mb", "0", "--json"])[0] == 2
    assert _run(["python", str(program), "--allow-import", "ctypes", "--json"])[0] == 2
    (tmp_path / "m.wat").write_text('(module (func (export "run")))')
    assert _run(["wasm", str(tmp_path / "m.wat"), "--preset", "lenient", "--json"])[0] == 2
    assert _run(["wasm", str(tmp_path / "m.wat"), "--purpose", "fun", "--json"])[0] == 2
    assert _run(["wasm", str(tmp_path / "m.wat"), "--input", str(tmp_path / "none.bin"), "--json"])[0] == 2


def test_hostile_npy_inputs_are_refused_cleanly(tmp_path):
    # .npy files handed to the CLI: a pickled object array (its __reduce__ would run code)
    # and a header far past numpy's header cap. np.load(allow_pickle=False) refuses
    # both; the CLI says config_invalid (exit 2) and runs nothing.
    program = tmp_path / "p.py"
    program.write_text("outputs['y'] = inputs['x']\n")
    canary = tmp_path / "pwned"
    pickled = tmp_path / "pickled.npy"
    with open(pickled, "wb") as f:
        np.lib.format.write_array(f, np.array([_Payload(str(canary))], dtype=object), allow_pickle=True)
    huge = tmp_path / "huge.npy"
    huge.write_bytes(b"\x93NUMPY\x02\x00" + (1 << 24).to_bytes(4, "little") + b"{" + b" " * (1 << 24))
    for path in (pickled, huge):
        code, out = _run(["python", str(program), "--input", f"x={path}", "--json"])
        assert code == 2, out
        assert json.loads(out)["error_kind"] == "config_invalid"
    assert not canary.exists()


class _Payload:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
