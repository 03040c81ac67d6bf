"""`bcai keys new|show|list` through the real console script entry point."""

import json
import stat

from typer.testing import CliRunner

from bcai.cli.app import app

runner = CliRunner()


def test_keys_new_show_list(tmp_path):
    home = ["--home", str(tmp_path)]
    result = runner.invoke(app, ["keys", "new", "alice", *home, "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["address"].startswith("bcai")
    assert stat.S_IMODE((tmp_path / "keys" / "alice.json").stat().st_mode) == 0o600

    shown = json.loads(runner.invoke(app, ["keys", "show", "alice", *home, "--json"]).output)
    assert shown["address"] == created["address"]
    assert "seed" not in shown

    listed = json.loads(runner.invoke(app, ["keys", "list", *home, "--json"]).output)
    assert [k["name"] for k in listed["keys"]] == ["alice"]


def test_keys_errors_exit_nonzero(tmp_path):
    home = ["--home", str(tmp_path)]
    assert runner.invoke(app, ["keys", "new", "alice", *home]).exit_code == 0
    dup = runner.invoke(app, ["keys", "new", "alice", *home, "--json"])
    assert dup.exit_code == 2
    assert json.loads(dup.output)["error"]["code"] == "keystore"
    assert runner.invoke(app, ["keys", "show", "nobody", *home]).exit_code == 2
