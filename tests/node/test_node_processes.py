"""The devnet's process bookkeeping: a started node is recognisable at once, and `stop`
signals only a process whose live command line is the one recorded."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bcai.node import processes
from bcai.node.processes import is_ours, start_node, stop_process


def test_a_started_process_is_ours_the_moment_start_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Popen` returns before the child's new arguments are in place (its command line reads
    empty for a moment): a `stop` right after `start` must still find and stop it."""
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(processes, "node_command", lambda home: command)
    for i in range(20):
        pid, started = start_node(tmp_path / f"n{i}")
        assert started == command
        assert is_ours(pid, command)
        assert stop_process(pid, command, timeout_s=5)
        deadline = time.monotonic() + 5
        while is_ours(pid, command):
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_stop_leaves_a_process_with_another_command_line_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not stop_process(other.pid, [sys.executable, "-m", "bcai", "node", "run", "--home", str(tmp_path)])
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_start_returns_when_the_child_exits_before_showing_its_command(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "node_command", lambda home: [sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    pid, command = start_node(tmp_path)
    assert time.monotonic() - started < 9  # not the whole wait: the exit ends it
    assert (tmp_path / "logs" / "stdout.log").exists()
