"""Starting and stopping node processes that a devnet owns.

A devnet records each process it starts (pid, the exact command line, its home). `stop`
only signals a pid whose live command line is still the one recorded, so a recycled pid
that now belongs to someone else is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def find_free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the OS reports free now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def node_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "bcai", "node", "run", "--home", str(home)]


def start_node(home: Path) -> tuple[int, list[str]]:
    """Start `bcai node run --home HOME` detached, output to HOME/logs/stdout.log."""
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = node_command(home)
    with open(logs / "stdout.log", "ab") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=home)
    _wait_for_exec(proc, command)
    return proc.pid, command


def _wait_for_exec(proc: subprocess.Popen[bytes], command: list[str], timeout_s: float = 10.0) -> None:
    """Return once the child shows `command` as its command line (or has exited).

    `Popen` returns as soon as the kernel has replaced the child's memory, a moment before
    it writes the new program's arguments there: in between, /proc/PID/cmdline reads empty.
    A `stop` in that window took the node for someone else's process and left it running
    (a devnet `up` that failed at once, on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while read_cmdline(proc.pid) != command and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)


def read_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:  # a zombie has an empty command line
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def is_ours(pid: int, command: list[str]) -> bool:
    return read_cmdline(pid) == command


def stop_process(pid: int, command: list[str], timeout_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout_s`. Returns True if our process was running."""
    if not is_ours(pid, command):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_ours(pid, command):
            return True
        _reap(pid)
        time.sleep(0.05)
    if is_ours(pid, command):
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
