"""Bad input to any `bcai` command: one clear line on stderr (or one JSON object on stdout
with `--json`), a non-zero exit, no traceback, and no half-written files.

Most cases run in-process through `bcai.cli.app.run` (what the console script runs); the
ones about the process itself (a closed stdout, Ctrl-C) start `python -m bcai`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bcai.cli.app import run
from bcai.cli.files import write_file
from bcai.errors import FileAccessError

SRC = str(Path(__file__).resolve().parents[1] / "src")
ADDRESS = "bcai00000000000000000000000000000000000000aa"


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, dict]:
    """Exit status and the one JSON document the command printed (nothing else on stdout)."""
    code = run([*args, "--json"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return code, json.loads(out)


def run_human(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    """Exit status and stderr, which must be one line; stdout must be empty."""
    code = run(args)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return code, captured.err


@pytest.mark.parametrize("args, needle", [
    (["keys", "new"], "Missing argument"),
    (["keys", "new", "a", "b"], "unexpected extra argument"),
    (["tx", "bond", "0", "--key", "k"], "amount"),
    (["tx", "bond", "1.5", "--key", "k"], "amount"),
    (["tx", "transfer", ADDRESS, str(2**64), "--key", "k"], "18446744073709551615"),
    (["devnet", "up", "-n", "abc"], "nodes"),
    (["devnet", "up", "-n", "1", "--wait", "nan", "--home", "unused"], "positive number of seconds"),
    (["devnet", "up", "-n", "1", "--wait", "-1", "--home", "unused"], "positive number of seconds"),
    (["job", "submit", "job.yaml", "--key", "k", "--timeout", "inf"], "positive number of seconds"),
    (["no-such-command"], "no-such-command"),
])
def test_usage_errors_are_config_invalid_in_json_and_one_line(capsys, monkeypatch, tmp_path, args, needle):
    monkeypatch.chdir(tmp_path)  # had a devnet started, it would be here
    code, doc = run_json(capsys, args)
    assert code == 2 and doc["status"] == "error" and doc["error"]["code"] == "config_invalid"
    assert needle.lower() in doc["error"]["message"].lower()
    code, err = run_human(capsys, args)
    assert code == 2 and err.startswith("error (config_invalid): ") and "--help" in err


@pytest.mark.parametrize("url", ["http://[::1", "notaurl", "ftp://x", "http://127.0.0.1:99999", "http://", ""])
def test_bad_node_url_is_named(capsys, url):
    for args in (["status", "--url", url], ["account", ADDRESS, "--url", url], ["job", "list", "--url", url]):
        code, doc = run_json(capsys, args)
        assert code == 2 and doc["error"]["code"] == "config_invalid", doc
        assert repr(url) in doc["error"]["message"]


@pytest.fixture
def fieldless_node():
    """A node that answers every GET with 200 and `{}`: a JSON object without the fields the API promises."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.mark.parametrize("args", [["status"], ["account", ADDRESS], ["job", "status", "ab" * 32],
                                  ["job", "result", "ab" * 32, "-o", "model.pt"]])
def test_node_answer_without_its_fields_is_bad_reply(capsys, tmp_path, monkeypatch, fieldless_node, args):
    monkeypatch.chdir(tmp_path)
    code, err = run_human(capsys, [*args, "--url", fieldless_node])
    assert code == 1 and err.startswith("error (bad_reply): ")
    assert not (tmp_path / "model.pt").exists()


def test_brackets_in_names_are_printed_not_read_as_markup(capsys, tmp_path):
    code, err = run_human(capsys, ["keys", "show", "[/bold]", "--home", str(tmp_path)])
    assert code == 2 and "'[/bold]'" in err
    code, err = run_human(capsys, ["genesis", "check", str(tmp_path / "[/z]")])
    assert code == 2 and "[/z]" in err
    assert run(["node", "init", "--home", str(tmp_path / "n"), "--name", "[/y]"]) == 0
    assert "initialized node [/y]" in capsys.readouterr().out


def test_long_error_stays_on_one_line(capsys, tmp_path):
    code, err = run_human(capsys, ["genesis", "check", str(tmp_path / ("x" * 300))])
    assert code == 2 and "x" * 300 in err


@pytest.mark.parametrize("home", ["file", "/proc/bcai-test", "dangling"])
def test_unusable_home_is_file_access(capsys, tmp_path, home):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    home = str(tmp_path / home) if not home.startswith("/") else home
    for args in (["keys", "new", "k", "--home", home], ["node", "init", "--home", home]):
        code, doc = run_json(capsys, args)
        assert code == 1 and doc["error"]["code"] == "file_access", doc
        assert home in doc["error"]["message"]
        code, err = run_human(capsys, args)
        assert err.startswith("error (file_access): ") and home in err


def test_keys_list_refuses_a_file_as_home(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, doc = run_json(capsys, ["keys", "list", "--home", str(tmp_path / "file")])
    assert code == 1 and doc["error"]["code"] == "file_access"


@pytest.mark.parametrize("option", [["--roles", "bogus"], ["--p2p-port", "70000"], ["--chain-id", ""], ["--name", ""],
                                    ["--name", "a\nb"], ["--name", "x" * 65]])
def test_failed_node_init_leaves_nothing_and_can_be_retried(capsys, tmp_path, option):
    home = tmp_path / "node"
    code, doc = run_json(capsys, ["node", "init", "--home", str(home), *option])
    assert code == 2 and doc["error"]["code"] in ("config_invalid", "genesis_invalid")
    assert not home.exists()
    (tmp_path / "empty").mkdir()
    code, doc = run_json(capsys, ["node", "init", "--home", str(tmp_path / "empty"), *option])
    assert code == 2 and list((tmp_path / "empty").iterdir()) == []
    code, doc = run_json(capsys, ["node", "init", "--home", str(home)])
    assert code == 0 and (home / "config.toml").exists()


def test_non_utf8_job_file_is_invalid_job_document(capsys, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_bytes(b"\xff\xfe name: x\n")
    code, doc = run_json(capsys, ["job", "submit", str(job), "--key", "k", "--home", str(tmp_path),
                                  "--url", "http://127.0.0.1:1"])
    assert code == 1 and doc["error"]["code"] == "invalid_job_document"
    assert "not UTF-8" in doc["error"]["message"]


def test_unforeseen_exception_is_one_line_internal_error(capsys, monkeypatch, tmp_path):
    from bcai.crypto.keystore import KeyStore

    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(KeyStore, "names", broken)
    code, doc = run_json(capsys, ["keys", "list", "--home", str(tmp_path)])
    assert code == 1 and doc["error"]["code"] == "internal_error" and "boom" in doc["error"]["message"]
    monkeypatch.setenv("BCAI_TRACEBACK", "1")
    with pytest.raises(RuntimeError):
        run(["keys", "list", "--home", str(tmp_path)])


def test_failed_sandbox_run_carries_the_error_object(capsys, tmp_path):
    module = tmp_path / "bad.wat"
    module.write_text("not a module")
    code, doc = run_json(capsys, ["sandbox", "wasm", str(module)])
    assert code != 0 and doc["status"] == "error"
    assert doc["error"] == {"code": "sandbox_invalid_module", "message": doc["message"]}


def test_write_file_is_whole_or_absent(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(FileAccessError, match="already exists"):
        write_file(target, b"new", overwrite=False)
    assert target.read_bytes() == b"old"

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "fresh.bin", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


# --- the process itself ---------------------------------------------------------------


def bcai(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "bcai", *args], env=env, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.parametrize("stdout", ["closed", "full"])
def test_unwritable_stdout_is_one_line_on_stderr(tmp_path, stdout):
    with open("/dev/full", "wb") as full:
        if stdout == "closed":  # the child starts with fd 1 closed (`bcai ... >&-`)
            proc = bcai("keys", "list", "--home", str(tmp_path), "--json", preexec_fn=lambda: os.close(1))
        else:
            proc = bcai("keys", "list", "--home", str(tmp_path), "--json", stdout=full)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.decode().startswith("error (output_failed): cannot write the result") and b"Traceback" not in err


def test_ctrl_c_while_waiting_for_a_node_is_a_clean_interrupted(tmp_path):
    with socket.socket() as server:  # accepts and never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(60)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        for as_json in (False, True):
            proc = bcai("status", "--url", url, *(["--json"] if as_json else []), stdout=subprocess.PIPE)
            conn, _ = server.accept()  # the command is now waiting for the answer
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            conn.close()
            assert proc.returncode == 130 and b"Traceback" not in err
            if as_json:
                assert json.loads(out)["error"]["code"] == "interrupted"
            else:
                assert err.decode() == "error (interrupted): interrupted\n"
