"""The forked child: lock itself down, run the untrusted program, send its outputs back.

Runs in a process forked from the zygote (which never ran untrusted code) and exits when
done; no process is ever reused. Order matters, each step before untrusted code exists:

1. read the whole job frame (code, constraints, inputs) from the job pipe;
2. OOM score 1000 (the host's first victim); move into the private work dir, set rlimits (core 0, open files, file size, CPU time,
   address space = current size + `max_memory_mb`, 64 queued signals, no real-time or
   raised priority), stdout/stderr to /dev/null;
3. Landlock: read-only access to the Python installation and system libraries, full
   access to the work dir, nothing else (and no TCP unless granted);
4. when running as root: drop to `nobody` (no groups) or, where `nobody` cannot read the
   Python installation, keep uid 0 with every capability dropped (`privileges.py`);
   not root: RLIMIT_NPROC = 0; then not dumpable (no core dump, no same-uid /proc access);
5. seccomp (see `seccomp_filter.py`);
6. compile the program (its cost counts against the limits), empty the environment, install the audit hook and the import guard, run the code.

The audit hook and import guard (step 6) are not the security boundary: they turn
attempts into clear error kinds. Steps 2-5 are the boundary: they hold even when the
program reaches `os` through object walks and the hooks are bypassed.

The program sees `inputs` (a dict of read-only numpy arrays) and fills `outputs` (a dict
of name -> array-like); if it defines `main(inputs)`, the dict `main` returns is used.
"""

from __future__ import annotations

import builtins
import errno
import functools
import fcntl
import io
import math
import os
import resource
import signal
import sys
import sysconfig
from typing import Any, NoReturn

import numpy as np

from bcai.sandbox.python import landlock, privileges, seccomp_filter
from bcai.sandbox.python.frames import MAX_MESSAGE_CHARS, Frame, FrameError, decode_frame, encode_frame

JOB_FD = 3
RESULT_FD = 4
PROGRAM_NAME = "<sandbox>"
#: The main thread's stack: deep C recursion ends in SIGSEGV here, not in a swapping host.
_STACK_BYTES = 8 << 20
#: Signals the child may have queued (it signals only itself).
_SIGPENDING = 64


class SandboxViolation(Exception):
    """Raised inside the child when the program tries something its constraints deny."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Guard:
    """State of the audit hook: the first violation wins, even if the program catches it."""

    def __init__(self, constraints: dict[str, Any], workdir: str, trusted: tuple[str, ...]) -> None:
        self.armed = False
        self.violation: SandboxViolation | None = None
        self.file_ops = 0
        self.max_file_ops = int(constraints["max_file_operations"])
        self.network = bool(constraints["network_access"])
        self.allowed_imports = frozenset(constraints["allowed_imports"])
        self.workdir = workdir
        self.trusted = trusted

    def deny(self, kind: str, message: str) -> NoReturn:
        violation = SandboxViolation(kind, message)
        if self.violation is None:
            self.violation = violation
        raise violation

    def check_path(self, event: str, path: Any, writing: bool) -> None:
        if isinstance(path, int):
            return  # an fd the process already holds
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return
        full = os.path.realpath(os.path.join(self.workdir, path))
        if full == self.workdir or full.startswith(self.workdir + os.sep):
            self.file_ops += 1
            if self.file_ops > self.max_file_ops:
                self.deny("file_ops_limit", f"more than {self.max_file_ops} file operations ({event} {path!r})")
            return
        if not writing and full.startswith(self.trusted):
            return  # the import system reading the Python installation
        self.deny("forbidden", f"{event} {path!r}: outside the sandbox work dir")


_PROCESS_EVENTS = (
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "os.putenv",
    "os.unsetenv", "_thread.start_new_thread", "os.setuid", "os.chroot",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "os.add_dll_directory", "mmap.__new__", "resource.setrlimit",
    "resource.prlimit", "sys.remote_exec",
)
_WRITE_EVENTS = (
    "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown", "os.link",
    "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo",
    "os.mknod", "os.setxattr", "os.removexattr", "shutil.copyfile", "shutil.copymode",
    "shutil.copystat", "shutil.copytree", "shutil.move", "shutil.rmtree",
)
_READ_EVENTS = ("os.listdir", "os.scandir", "os.chdir", "glob.glob", "os.getxattr", "os.listxattr")


def _make_hook(guard: _Guard) -> Any:
    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not guard.armed:
            return
        if event == "open":
            path, mode = args[0], args[1]
            writing = mode is not None and isinstance(mode, str) and any(c in mode for c in "wax+")
            flags = args[2] if len(args) > 2 else 0
            if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
                writing = True
            guard.check_path(event, path, writing)
        elif event.startswith("socket.") and not guard.network:
            guard.deny("network_denied", f"{event}: the sandbox has no network access")
        elif event.startswith("ctypes.") or event in _PROCESS_EVENTS or event.startswith("os.exec") or event.startswith("os.spawn") or event.startswith("os.posix_spawn"):
            guard.deny("forbidden", f"{event}: not allowed in the sandbox")
        elif event in _WRITE_EVENTS:
            guard.check_path(event, args[0] if args else None, True)
            if len(args) > 1 and event in ("os.rename", "os.link", "os.symlink", "shutil.copyfile", "shutil.move", "shutil.copytree"):
                guard.check_path(event, args[1], True)
        elif event in _READ_EVENTS:
            guard.check_path(event, args[0] if args else ".", False)

    return hook


def _make_import(guard: _Guard, original: Any, program_globals: dict[str, Any]) -> Any:
    getframe = sys._getframe
    modules = sys.modules

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        caller = getframe(1).f_globals
        module = modules.get(caller.get("__name__", "")) if isinstance(caller.get("__name__"), str) else None
        trusted = module is not None and module.__dict__ is caller and caller is not program_globals
        if not trusted:
            top = name.split(".")[0] if level == 0 else ""
            if top not in guard.allowed_imports:
                guard.deny("import_denied", f"import of {name!r} is not allowed (allowed: {', '.join(sorted(guard.allowed_imports))})")
        return original(name, globals, locals, fromlist, level)

    return guarded_import


def compute_safe_builtins(guarded_import: Any) -> dict[str, Any]:
    safe = dict(builtins.__dict__)
    for name in ("breakpoint", "input", "help", "exit", "quit", "copyright", "credits", "license"):
        safe.pop(name, None)
    safe["__import__"] = guarded_import
    return safe


class _BoundedText(io.TextIOBase):
    """stdout/stderr for the program: keeps the first `limit` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str")
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[n:]


@functools.lru_cache(maxsize=1)
def get_trusted_read_paths() -> tuple[str, ...]:
    """The Python installation and system libraries (read-only). Cached: the zygote
    computes it once before its first fork, so children inherit the answer."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    paths.add(package_root)
    paths.update(("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache"))
    return tuple(sorted(os.path.realpath(p) for p in paths))


@functools.lru_cache(maxsize=1)
def get_trusted_prefixes() -> tuple[str, ...]:
    return tuple(p + os.sep if os.path.isdir(p) else p for p in get_trusted_read_paths())


def _vm_size() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


#: The kernel's OOM killer takes the child before anything else on the host (the node
#: included) when memory runs out; raising one's own score needs no privilege. Best
#: effort: a preference of the OOM killer, not a wall (RLIMIT_AS is the memory bound),
#: so a host whose /proc refuses the write still runs jobs.
_OOM_SCORE_ADJ = b"1000"


def _lock_down(constraints: dict[str, Any], workdir: str, drop_to: tuple[int, int] | None, landlock_required: bool) -> None:
    try:
        with open("/proc/self/oom_score_adj", "wb") as oom:
            oom.write(_OOM_SCORE_ADJ)
    except OSError:
        pass
    os.chdir(workdir)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-big writes raise EFBIG instead
    seconds = max(1, math.ceil(int(constraints["max_execution_time_ms"]) / 1000))
    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: int(constraints["max_open_files"]) + 8,
        resource.RLIMIT_FSIZE: int(constraints["max_file_size_mb"]) << 20,
        resource.RLIMIT_AS: _vm_size() + (int(constraints["max_memory_mb"]) << 20),
        resource.RLIMIT_MEMLOCK: 0,
        resource.RLIMIT_STACK: _STACK_BYTES,
        resource.RLIMIT_MSGQUEUE: 0,
        # Queued signals count per uid (a root child shares root's count with the node);
        # real-time scheduling or a raised nice would starve the host's CPUs.
        resource.RLIMIT_SIGPENDING: _SIGPENDING,
        resource.RLIMIT_RTPRIO: 0,
        resource.RLIMIT_NICE: 0,
    }
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    trusted = get_trusted_read_paths()
    # No file operations granted: the work dir is read-only to the kernel too, so a
    # program past the counting hook still cannot create a single file (disk, inodes).
    writable = int(constraints["max_file_operations"]) > 0
    abi = landlock.restrict_filesystem(
        read_only=[*trusted, "/dev/urandom", "/dev/null"] + ([] if writable else [workdir]),
        read_write=[workdir] if writable else [],
        deny_network=not constraints["network_access"],
    )
    if landlock_required and abi == 0:
        raise OSError(errno.ENOSYS, "Landlock is unavailable: file access would not be confined")
    if drop_to is not None:
        privileges.drop_to_user(drop_to[0], drop_to[1])
    elif os.geteuid() == 0:
        privileges.drop_capabilities()
    if os.geteuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    privileges.set_undumpable()
    seccomp_filter.load_filter(os.getpid(), bool(constraints["network_access"]))


def _error_frame(kind: str, message: str, log: str = "") -> bytes:
    return encode_frame({"status": "error", "kind": kind, "message": message[:MAX_MESSAGE_CHARS], "log": log}, {})


def _classify(exc: BaseException) -> str:
    if isinstance(exc, SandboxViolation):
        return exc.kind
    if isinstance(exc, MemoryError):
        return "memory_limit"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file_ops_limit"
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EXDEV):
        # EXDEV: Landlock refuses a link or rename across its rules (the work dir is one
        # file system, so nothing else gets EXDEV here).
        # The kernel said no (Landlock, seccomp, uid): the hooks were bypassed or blind.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = tb.tb_frame.f_code.co_filename if tb is not None else ""
        return "network_denied" if os.path.basename(where) == "socket.py" else "forbidden"
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return "forbidden"
    return "crashed"


def run_child(job_fd: int, result_fd: int) -> NoReturn:
    """Entry point in the forked child. Never returns: the process exits."""
    try:
        high_job = fcntl.fcntl(job_fd, fcntl.F_DUPFD_CLOEXEC, 16)
        high_result = fcntl.fcntl(result_fd, fcntl.F_DUPFD_CLOEXEC, 16)
        os.dup2(high_job, JOB_FD)
        os.dup2(high_result, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)
        frame = decode_frame(_read_all(JOB_FD))
        os.close(JOB_FD)
        _write_all(RESULT_FD, _run(frame))
    except BaseException as exc:  # noqa: BLE001 - the child reports, never raises
        try:
            _write_all(RESULT_FD, _error_frame("crashed", f"sandbox child failed: {type(exc).__name__}: {exc}"))
        except BaseException:  # noqa: BLE001
            pass
    os._exit(0)


def _run(frame: Frame) -> bytes:
    header = frame.header
    constraints = header["constraints"]
    workdir = os.path.realpath(header["workdir"])
    drop = header.get("drop_to")
    drop_to = (int(drop[0]), int(drop[1])) if isinstance(drop, list) and len(drop) == 2 else None
    code = header["code"]
    inputs = {}
    for name, array in frame.tensors.items():
        array.flags.writeable = False
        inputs[name] = array
    try:
        _lock_down(constraints, workdir, drop_to, header.get("landlock_required") is not False)
    except OSError as exc:
        # Nothing untrusted ran yet; the bridge checked these layers at start, so this is
        # a broken host, reported as such.
        return _error_frame("crashed", f"sandbox lock-down failed, the program was not run: {exc}")
    # Compiled only now, under the limits: 3 MB of tuple literals take ~740 MB and seconds
    # to compile, which must count against max_memory_mb and the CPU limit.
    try:
        compiled = compile(code, PROGRAM_NAME, "exec", dont_inherit=True)
    except MemoryError:
        return _error_frame("memory_limit", "the program needs more memory than its limit just to compile")
    except (SyntaxError, ValueError, RecursionError) as exc:
        return _error_frame("crashed", f"program does not compile: {exc}")
    os.environ.clear()
    # The CBOR encoder imports two modules on its first use; have that happen now, while
    # imports are free, rather than under the guard at the first frame anyone writes.
    encode_frame({"status": "ok", "log": ""}, {})
    guard = _Guard(constraints, workdir, get_trusted_prefixes())
    program: dict[str, Any] = {"__name__": "__sandbox__", "inputs": inputs, "outputs": {}}
    guarded = _make_import(guard, builtins.__import__, program)
    program["__builtins__"] = compute_safe_builtins(guarded)
    log = _BoundedText(int(constraints["max_log_bytes"]))
    sys.stdout = sys.stderr = log  # type: ignore[assignment]
    sys.addaudithook(_make_hook(guard))
    builtins.__import__ = guarded
    guard.armed = True
    try:
        exec(compiled, program)
        outputs = program.get("outputs")
        main = program.get("main")
        if callable(main):
            outputs = main(inputs)
    except BaseException as exc:  # noqa: BLE001 - everything the program throws is reported
        guard.armed = False
        kind = guard.violation.kind if guard.violation else _classify(exc)
        if isinstance(exc, SystemExit):
            kind, exc = (guard.violation.kind if guard.violation else "crashed"), RuntimeError(f"program called exit({exc.code!r})")
        return _error_frame(kind, f"{type(exc).__name__}: {exc}", log.getvalue())
    guard.armed = False
    if guard.violation is not None:
        return _error_frame(guard.violation.kind, str(guard.violation), log.getvalue())
    if not isinstance(outputs, dict):
        return _error_frame("output_invalid", f"outputs must be a dict of name -> array, got {type(outputs).__name__}", log.getvalue())
    try:
        converted = {}
        for name, value in outputs.items():
            if not isinstance(name, str):
                raise FrameError(f"output name {name!r} is not a string")
            converted[name] = _to_array(name, value)
        data = encode_frame({"status": "ok", "log": log.getvalue()}, converted)
    except MemoryError:
        return _error_frame("memory_limit", "out of memory while encoding outputs", log.getvalue())
    except (FrameError, TypeError, ValueError, OverflowError) as exc:
        return _error_frame("output_invalid", str(exc), log.getvalue())
    if len(data) > int(constraints["max_output_bytes"]) + (1 << 20):
        return _error_frame("output_too_large", f"outputs take {len(data)} bytes, over the cap of {constraints['max_output_bytes']}", log.getvalue())
    return data


def _to_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (bool, int, float, complex, list, tuple, np.generic)):
        array = np.asarray(value)
    else:
        raise FrameError(f"output {name!r} is a {type(value).__name__}, not an array, number or list")
    if array.dtype.kind not in "biufc":
        raise FrameError(f"output {name!r} has dtype {array.dtype}, not numeric or bool")
    return array
