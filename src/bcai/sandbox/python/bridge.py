"""The shell: `PythonSandbox` runs untrusted Python in a fresh, locked-down process.

One warm zygote (`zygote.py`) per sandbox object forks one child per execution; the
child locks itself down and runs the program (`child.py`); this side sends the job,
enforces the wall-clock limit (kill through a pidfd), caps the bytes it accepts, decodes
the outputs without trusting them (`frames.py`), removes the private work dir, and turns
all of it into an `ExecutionResult`.

`run_python(code, inputs, constraints)` uses a process-wide default sandbox; it is the
function the VM's `PythonExecute` instruction calls.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Mapping, Sequence

import numpy as np

from bcai.errors import ConfigError, SandboxUnavailable
from bcai.sandbox.python.constraints import PythonConstraints
from bcai.sandbox.python.frames import (
    MAX_HEADER_BYTES,
    MAX_MESSAGE_CHARS,
    FrameError,
    decode_frame,
    encode_frame,
    is_valid_name,
)
from bcai.sandbox.python.privileges import get_python_paths, is_world_readable
from bcai.sandbox.python.zygote import READY, STATUS
from bcai.sandbox.result import (
    PYTHON_ERROR_KINDS,
    ExecutionMetrics,
    ExecutionResult,
    compute_error,
    compute_ok,
)

NOBODY_UID = 65534
NOBODY_GID = 65534
_ZYGOTE_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"}
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[2]); "
    "from bcai.sandbox.python.zygote import main; main(int(sys.argv[1]))"
)
_SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_REAP_GRACE_S = 10.0
#: Error kinds a child's result frame may report. `time_limit` is the bridge's verdict
#: alone (its clock, the child's wait status): a program that forged it in its own frame
#: would pass a refusal or a crash off as "the node was too slow".
CHILD_ERROR_KINDS = PYTHON_ERROR_KINDS - {"time_limit"}
#: How often the bridge counts the entries of a running job's work dir (file budget).
WORKDIR_CHECK_S = 0.05


def parse_ready(message: bytes) -> dict[str, Any] | None:
    """The zygote's start message: b"READY {json}" with the protections it found."""
    if not message.startswith(READY + b" "):
        return None
    try:
        found = json.loads(message[len(READY) + 1 :])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def check_protections(found: Mapping[str, Any], privilege_mode: str, allow_without_landlock: bool) -> None:
    """Refuse to run where a kernel layer the sandbox stands on is missing.

    seccomp is required everywhere (it is what stops processes, threads, ptrace ...).
    Landlock is required too unless the caller accepts plain uid/DAC confinement with
    `allow_without_landlock`; never for children that keep uid 0 (no-capabilities mode),
    which without Landlock could write every root-owned file.
    """
    if found.get("seccomp") is not True:
        raise SandboxUnavailable("seccomp filters do not work on this kernel: the Python sandbox refuses to run untrusted code without them")
    if isinstance(found.get("landlock_abi"), int) and found["landlock_abi"] > 0:
        return
    if privilege_mode == "no-capabilities":
        raise SandboxUnavailable("Landlock does not work on this kernel (< 5.13 or disabled) and children would keep uid 0: every root-owned file would be open to them; refusing")
    if not allow_without_landlock:
        raise SandboxUnavailable("Landlock does not work on this kernel (< 5.13 or disabled): file access would rest on uid/DAC checks alone; pass allow_without_landlock=True to accept that")


class PythonSandbox:
    """Runs Python programs, each in its own fresh process. Thread-safe; close() when done.

    `run_as_uid`: the uid children drop to when this process is root (default `nobody`)
    and that uid can read the Python installation; otherwise root children keep uid 0
    with every capability dropped; `drop_root` ("auto", "user", "capabilities") forces
    one mode. Not root: children keep our uid, RLIMIT_NPROC=0.
    `workdir_root`: where the private work dirs are made (default: the system temp dir).
    The zygote probes seccomp and Landlock at start (`protections`); without them the
    sandbox raises SandboxUnavailable (see `check_protections`), unless
    `allow_without_landlock` accepts plain uid/DAC confinement for non-root children.
    """

    def __init__(
        self,
        *,
        run_as_uid: int = NOBODY_UID,
        run_as_gid: int = NOBODY_GID,
        workdir_root: str | None = None,
        drop_root: str = "auto",
        startup_timeout_s: float = 60.0,
        allow_without_landlock: bool = False,
    ) -> None:
        self._workdir_root = workdir_root
        self._allow_without_landlock = allow_without_landlock
        self._protections: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._startup_timeout_s = startup_timeout_s
        # Root children become `run_as_uid` when it can read the Python installation,
        # otherwise they stay uid 0 with no capabilities (see privileges.py).
        if drop_root not in ("auto", "user", "capabilities"):
            raise ConfigError(f"drop_root must be auto, user or capabilities, not {drop_root!r}")
        if drop_root == "auto":
            drop_root = "user" if is_world_readable([*get_python_paths(), _SRC_ROOT]) else "capabilities"
        self._drop = (run_as_uid, run_as_gid) if os.geteuid() == 0 and drop_root == "user" else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def privilege_mode(self) -> str:
        """How children give up root: "user <uid>", "no-capabilities" or "unprivileged"."""
        if os.geteuid() != 0:
            return "unprivileged"
        return f"user {self._drop[0]}" if self._drop else "no-capabilities"

    @property
    def protections(self) -> dict[str, Any] | None:
        """The kernel layers the zygote found at start: {"landlock_abi": int (0: none),
        "seccomp": bool}; None before the first start."""
        return dict(self._protections) if self._protections is not None else None

    @property
    def zygote_pid(self) -> int | None:
        """The fork server's pid while it runs (its children are the live executions)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> None:
        """Start the zygote now (otherwise the first `run` does)."""
        with self._lock:
            self._ensure_zygote()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop_zygote()

    def __enter__(self) -> PythonSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_zygote(self) -> socket.socket:
        if self._closed:
            raise SandboxUnavailable("the sandbox is closed")
        if self._control is not None and self._proc is not None and self._proc.poll() is None:
            return self._control
        self._stop_zygote()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(theirs.fileno()), _SRC_ROOT],
                pass_fds=[theirs.fileno()],
                env=_ZYGOTE_ENV,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd="/",
            )
        finally:
            theirs.close()
        ours.settimeout(self._startup_timeout_s)
        try:
            ready = ours.recv(4096)
        except OSError as exc:
            ready = b""
            reason = str(exc)
        else:
            reason = "it exited" if not ready else f"it said {ready[:64]!r}"
        found = parse_ready(ready)
        if found is None:
            ours.close()
            self._stop_zygote()
            raise SandboxUnavailable(f"the Python sandbox's fork server did not start ({reason}); is libseccomp installed (make sysdeps)?")
        try:
            check_protections(found, self.privilege_mode, self._allow_without_landlock)
        except SandboxUnavailable:
            ours.close()
            self._stop_zygote()
            raise
        self._protections = found
        ours.settimeout(None)
        self._control = ours
        return ours

    def _stop_zygote(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _fork(self, fds: list[int]) -> tuple[int, int]:
        """Ask the zygote for a child holding `fds`; return (pid, pidfd). Retries once."""
        with self._lock:
            for attempt in (1, 2):
                control = self._ensure_zygote()
                try:
                    socket.send_fds(control, [b"F"], fds)
                    msg, got, _, _ = socket.recv_fds(control, 16, 1)
                except OSError:
                    msg, got = b"", []
                if len(msg) == 4 and len(got) == 1 and struct.unpack(">i", msg)[0] > 0:
                    return struct.unpack(">i", msg)[0], got[0]
                for fd in got:
                    os.close(fd)
                self._stop_zygote()
            raise SandboxUnavailable("the Python sandbox's fork server failed twice")

    # -- one execution -----------------------------------------------------------------

    def run(
        self,
        code: str,
        inputs: Mapping[str, Any] | None = None,
        constraints: PythonConstraints | None = None,
        expected_outputs: Sequence[str] | None = None,
    ) -> ExecutionResult:
        """Run `code` on `inputs` (name -> numpy array) under `constraints`.

        Returns an `ExecutionResult` (failures of the program are results, not
        exceptions). Raises `ConfigError` for bad arguments and `SandboxUnavailable` when
        the sandbox cannot start.
        """
        constraints = constraints if constraints is not None else PythonConstraints()
        if not isinstance(constraints, PythonConstraints):
            raise ConfigError("constraints must be a PythonConstraints")
        if not isinstance(code, str):
            raise ConfigError("code must be a str")
        expected = _check_expected(expected_outputs)
        with self._lock:
            self._ensure_zygote()  # refuses here when a kernel layer is missing
            landlock = bool(self._protections and self._protections.get("landlock_abi"))
        workdir = tempfile.mkdtemp(prefix="bcai-sandbox-", dir=self._workdir_root)
        try:
            job = _encode_job(code, inputs or {}, constraints, workdir, self._drop, landlock)
            if self._drop is not None:
                os.chown(workdir, *self._drop)
            return self._execute(job, constraints, expected, workdir)
        finally:
            remove_workdir(workdir)

    def _execute(self, job: bytes, constraints: PythonConstraints, expected: tuple[str, ...] | None, workdir: str) -> ExecutionResult:
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            pid, pidfd = self._fork([job_r, result_w, status_w])
        except BaseException:
            for fd in (job_r, job_w, result_r, result_w, status_r, status_w):
                os.close(fd)
            raise
        for fd in (job_r, result_w, status_w):
            os.close(fd)
        try:
            return self._supervise(pidfd, job, job_w, result_r, status_r, constraints, expected, workdir)
        finally:
            _kill(pidfd)
            for fd in (pidfd, result_r, status_r):  # _supervise closes job_w itself
                os.close(fd)

    def _supervise(
        self, pidfd: int, job: bytes, job_w: int, result_r: int, status_r: int,
        constraints: PythonConstraints, expected: tuple[str, ...] | None, workdir: str,
    ) -> ExecutionResult:
        try:
            _write_all(job_w, job)
        except BrokenPipeError:
            pass  # the child died before reading: its status says why
        finally:
            os.close(job_w)
        start = time.perf_counter()
        deadline = start + constraints.max_execution_time_ms / 1000
        cap = constraints.max_output_bytes + MAX_HEADER_BYTES + 4 * constraints.max_log_bytes
        data = bytearray()
        timed_out = too_large = False
        too_many_files: int | None = None
        # The child's own file-op count can be disarmed; the kernel bounds each file's
        # size (RLIMIT_FSIZE) but not their number, so we count the work dir's entries.
        watch = constraints.max_file_operations > 0
        next_check = start
        pause_s = WORKDIR_CHECK_S
        poller = select.poll()
        poller.register(result_r, select.POLLIN)
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            wait_s = min(remaining, WORKDIR_CHECK_S) if watch else remaining
            ready = poller.poll(max(1, int(wait_s * 1000)))
            if watch and time.perf_counter() >= next_check:
                scan_start = time.perf_counter()
                too_many_files = count_entries(workdir, constraints.max_file_operations)
                # At most ~10% of this thread's time goes to counting (a budget of a
                # million entries takes a while to count).
                pause_s = max(WORKDIR_CHECK_S, 10 * (time.perf_counter() - scan_start))
                next_check = time.perf_counter() + pause_s
                if too_many_files is not None:
                    break
            if not ready:
                continue
            chunk = os.read(result_r, 1 << 20)
            if not chunk:
                break
            data += chunk
            if len(data) > cap:
                too_large = True
                break
        if not (timed_out or too_large or too_many_files is not None):
            # The result pipe closed: give the child the rest of its time to exit (still
            # watching its work dir), then look at what it left behind.
            exited = False
            while not exited and too_many_files is None:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                exited = _wait_readable(pidfd, min(remaining, pause_s) if watch else remaining)
                if watch:
                    scan_start = time.perf_counter()
                    too_many_files = count_entries(workdir, constraints.max_file_operations)
                    pause_s = max(WORKDIR_CHECK_S, 10 * (time.perf_counter() - scan_start))
            timed_out = not exited and too_many_files is None
        _kill(pidfd)
        wall_ms = (time.perf_counter() - start) * 1000
        status, cpu_ms, peak = _read_status(status_r)
        metrics = ExecutionMetrics(wall_time_ms=wall_ms, cpu_time_ms=cpu_ms, peak_memory_bytes=peak)
        if too_many_files is not None:
            return compute_error("file_ops_limit", f"the work dir held more than {constraints.max_file_operations} entries (max_file_operations); the program was killed", metrics)
        return _classify(bytes(data), status, timed_out, too_large, metrics, constraints, expected)


def count_entries(workdir: str, limit: int) -> int | None:
    """None while `workdir` holds at most `limit` entries (files, dirs, links, at any
    depth), else the count reached. Stops at limit + 1, so it costs O(limit). A directory
    that exists but cannot be listed (a path past PATH_MAX hides everything below it)
    counts as over the limit: the job made its work dir uninspectable."""
    count = 0
    stack = [workdir]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    count += 1
                    if count > limit:
                        return count
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed meanwhile, or replaced by a file
        except OSError:
            return limit + 1
    return None


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_workdir(workdir: str) -> None:
    """Remove a finished job's work dir and everything in it; never raises.

    Not `shutil.rmtree`: the job shapes this tree. Python 3.11's rmtree recurses once per
    level, so a chain of 3000 nested dirs raised RecursionError out of `run` (the node
    crashed, the dir stayed); and a bridge without root cannot list a dir the job made
    with mode 0o300 (same uid, no DAC override), so the dir and its files stayed. This
    walk is iterative, holds one directory fd at a time (climbing back through ".."), never
    follows a symlink, and, without root, gives each directory back its owner's rights
    before opening it (the job is dead by now; as root it would not be needed).
    """
    not_root = os.geteuid() != 0
    try:
        fd = os.open(workdir, _DIR_FLAGS)
    except OSError:
        return
    frames: list[tuple[str, list[str]]] = [("", [])]  # (name in parent, subdirs still to remove)
    try:
        _list_for_removal(fd, frames[-1][1])
        while True:
            name, pending = frames[-1]
            if pending:
                sub = pending.pop()
                if not_root:
                    _ignore_oserror(os.chmod, sub, 0o700, dir_fd=fd)
                try:
                    child = os.open(sub, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                os.close(fd)
                fd = child
                frames.append((sub, []))
                _list_for_removal(fd, frames[-1][1])
                continue
            if len(frames) == 1:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            frames.pop()
            _ignore_oserror(os.rmdir, name, dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    _ignore_oserror(os.rmdir, workdir)


def _list_for_removal(fd: int, subdirs: list[str]) -> None:
    """Unlink every non-directory in directory `fd`; append its subdirectories' names."""
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.name)
                else:
                    _ignore_oserror(os.unlink, entry.name, dir_fd=fd)
    except OSError:
        pass


def _ignore_oserror(func: Any, *args: Any, **kwargs: Any) -> None:
    try:
        func(*args, **kwargs)
    except OSError:
        pass


def _classify(
    data: bytes, status: int | None, timed_out: bool, too_large: bool, metrics: ExecutionMetrics,
    constraints: PythonConstraints, expected: tuple[str, ...] | None,
) -> ExecutionResult:
    limit_ms = constraints.max_execution_time_ms
    if too_large:
        return compute_error("output_too_large", f"the program sent more than {constraints.max_output_bytes} output bytes", metrics)
    if timed_out:
        return compute_error("time_limit", f"the program ran past its {limit_ms} ms wall-clock limit and was killed", metrics)
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and metrics.cpu_time_ms >= limit_ms):
            return compute_error("time_limit", f"the program used its CPU-time limit ({limit_ms} ms)", metrics)
        return compute_error("crashed", f"the process was killed by {compute_signal_name(sig)}", metrics)
    if not data:
        code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
        return compute_error("crashed", f"the process exited (status {code}) without sending a result", metrics)
    try:
        frame = decode_frame(data)
    except FrameError as exc:
        return compute_error("output_invalid", f"the result frame is malformed: {exc}", metrics)
    header = frame.header
    raw_log = header.get("log")
    log = raw_log[: constraints.max_log_bytes] if isinstance(raw_log, str) else ""
    if header.get("status") == "error":
        kind, message = header.get("kind"), header.get("message")
        if not isinstance(kind, str) or kind not in CHILD_ERROR_KINDS or not isinstance(message, str):
            return compute_error("output_invalid", "the result frame reports an unknown error", metrics, log)
        return compute_error(kind, message[:MAX_MESSAGE_CHARS], metrics, log)
    if header.get("status") != "ok" or frame.header.keys() - {"status", "log"}:
        return compute_error("output_invalid", "the result frame has an unexpected header", metrics, log)
    size = sum(array.nbytes for array in frame.tensors.values())
    if size > constraints.max_output_bytes:
        return compute_error("output_too_large", f"outputs take {size} bytes, over the cap of {constraints.max_output_bytes}", metrics, log)
    if expected is not None:
        missing = [name for name in expected if name not in frame.tensors]
        if missing:
            return compute_error("output_invalid", f"the program did not set outputs {missing}", metrics, log)
        extra = [name for name in frame.tensors if name not in expected]
        if extra:
            return compute_error("output_invalid", f"the program set unexpected outputs {extra}", metrics, log)
    return compute_ok(frame.tensors, metrics, log)


def compute_signal_name(sig: int) -> str:
    """SIGSEGV, ... or "signal N": `signal.Signals` names only SIGRTMIN and SIGRTMAX of the
    real-time signals, and a job that killed itself with signal 40 raised ValueError out
    of `run` (the node crashed)."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _check_expected(expected_outputs: Sequence[str] | None) -> tuple[str, ...] | None:
    if expected_outputs is None:
        return None
    if isinstance(expected_outputs, str):
        raise ConfigError("expected_outputs must be a sequence of names, not a str")
    names = tuple(expected_outputs)
    for name in names:
        if not isinstance(name, str) or not is_valid_name(name):
            raise ConfigError(f"expected output name {name!r} is not an identifier")
    return names


def _encode_job(
    code: str, inputs: Mapping[str, Any], constraints: PythonConstraints, workdir: str,
    drop: tuple[int, int] | None, landlock_required: bool,
) -> bytes:
    for name, value in inputs.items():
        if not isinstance(name, str) or not is_valid_name(name):
            raise ConfigError(f"input name {name!r} is not an identifier")
        if not isinstance(value, np.ndarray):
            raise ConfigError(f"input {name!r} is a {type(value).__name__}, not a numpy array")
    header = {
        "code": code,
        "constraints": constraints.to_wire(),
        "workdir": workdir,
        "drop_to": list(drop) if drop else None,
        "landlock_required": landlock_required,
    }
    try:
        return encode_frame(header, inputs)
    except FrameError as exc:
        raise ConfigError(f"inputs cannot cross into the sandbox: {exc}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _wait_readable(fd: int, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout_s * 1000)))


def _kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (ProcessLookupError, OSError):
        pass


def _read_status(status_r: int) -> tuple[int | None, float, int]:
    """Wait for the zygote's report of the child's exit: (wait status, cpu ms, peak bytes)."""
    if not _wait_readable(status_r, _REAP_GRACE_S):
        return None, 0.0, 0
    record = os.read(status_r, STATUS.size)
    if len(record) != STATUS.size:
        return None, 0.0, 0
    status, user_us, sys_us, rss = STATUS.unpack(record)
    return status, (user_us + sys_us) / 1000, rss


_default: PythonSandbox | None = None
_default_lock = threading.Lock()


def get_default_sandbox() -> PythonSandbox:
    """The process-wide sandbox `run_python` uses (started on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PythonSandbox()
            atexit.register(_default.close)
        return _default


def run_python(
    code: str,
    inputs: Mapping[str, Any] | None = None,
    constraints: PythonConstraints | None = None,
    expected_outputs: Sequence[str] | None = None,
) -> ExecutionResult:
    """Run untrusted Python `code` in a fresh sandboxed process; see `PythonSandbox.run`.

    >>> import numpy as np
    >>> r = run_python("outputs['y'] = inputs['x'] * 2", {"x": np.arange(3)})
    >>> r.status, r.outputs["y"].tolist()
    ('ok', [0, 2, 4])
    """
    return get_default_sandbox().run(code, inputs, constraints, expected_outputs)
