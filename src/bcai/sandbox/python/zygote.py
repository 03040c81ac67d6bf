"""The fork server: a clean, warm interpreter that forks one child per execution.

Started by the bridge with an empty environment (plus single-threaded BLAS settings), it
imports numpy, pyseccomp and the child code once, then waits on its control socket. For
each request it receives three pipe ends (job in, result out, status out) by SCM_RIGHTS,
forks, and answers with the child's pid and a pidfd, so the bridge can kill the child
without pid-reuse races. When a child exits the zygote reaps it and writes its wait status
and resource use to that child's status pipe.

The zygote itself never runs untrusted code and never applies limits to itself; each
child locks itself down (`child.py`) and exits after one execution. If the zygote dies,
the bridge starts a new one.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import struct
import sys

STATUS = struct.Struct(">iqqq")  # wait status, user us, system us, max rss bytes
READY = b"READY"


def main(control_fd: int) -> None:
    # Warm everything a child needs before the first fork.
    import numpy  # noqa: F401
    import pyseccomp  # noqa: F401

    from bcai.sandbox.python import child, constraints  # noqa: F401

    child.get_trusted_prefixes()
    for name in constraints.DEFAULT_ALLOWED_IMPORTS:
        try:
            __import__(name)
        except ImportError:
            pass
    control = socket.socket(fileno=control_fd)
    control.sendall(READY + b" " + json.dumps(probe_protections()).encode())
    children: dict[int, tuple[int, int]] = {}  # pidfd -> (pid, status fd)
    poller = select.poll()
    poller.register(control.fileno(), select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == control.fileno():
                if not _serve_request(control, children, poller):
                    _shutdown(children)
                    return
            else:
                pid, status_fd = children.pop(fd)
                poller.unregister(fd)
                _, status, usage = os.wait4(pid, 0)
                record = STATUS.pack(
                    status,
                    int(usage.ru_utime * 1e6),
                    int(usage.ru_stime * 1e6),
                    usage.ru_maxrss * 1024,
                )
                try:
                    os.write(status_fd, record)
                except OSError:
                    pass
                os.close(status_fd)
                os.close(fd)


def probe_protections() -> dict[str, object]:
    """Which kernel layers work here: fork a throw-away child that applies Landlock (no
    rules: nothing readable) and the seccomp filter, then checks that both bite."""
    from bcai.sandbox.python import landlock, seccomp_filter

    abi = landlock.get_abi()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:  # each layer on its own: one failing must not hide the other
            if abi and landlock.restrict_filesystem([], [], deny_network=True):
                try:
                    os.close(os.open("/", os.O_RDONLY | os.O_DIRECTORY))
                except PermissionError:
                    code |= 1  # Landlock enforced
        except BaseException:  # noqa: BLE001 - the probe reports, never raises
            pass
        try:
            seccomp_filter.load_filter(os.getpid(), False)
            os.close(os.memfd_create("bcai-probe"))  # harmless where it is allowed
        except OSError as exc:
            code |= 2 if exc.errno == errno.EPERM else 0  # seccomp enforced
        except BaseException:  # noqa: BLE001
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
    return {"landlock_abi": abi if code & 1 else 0, "seccomp": bool(code & 2)}


def _serve_request(control: socket.socket, children: dict[int, tuple[int, int]], poller: select.poll) -> bool:
    try:
        msg, fds, _, _ = socket.recv_fds(control, 16, 3)
    except OSError:
        return False
    if not msg:
        return False
    if msg != b"F" or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        control.sendall(struct.pack(">i", -1))
        return True
    job_fd, result_fd, status_fd = fds
    pid = os.fork()
    if pid == 0:
        from bcai.sandbox.python.child import run_child

        control.close()
        run_child(job_fd, result_fd)
    os.close(job_fd)
    os.close(result_fd)
    pidfd = os.pidfd_open(pid)
    children[pidfd] = (pid, status_fd)
    poller.register(pidfd, select.POLLIN)
    socket.send_fds(control, [struct.pack(">i", pid)], [pidfd])
    return True


def _shutdown(children: dict[int, tuple[int, int]]) -> None:
    for pidfd, (pid, status_fd) in children.items():
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
        os.close(status_fd)
        os.close(pidfd)


if __name__ == "__main__":
    main(int(sys.argv[1]))
