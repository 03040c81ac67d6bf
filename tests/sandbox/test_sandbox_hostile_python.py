"""The hostile corpus (tests/sandbox/hostile/python/*.py): each program must end in the
error kind its `# expect:` line names and leave no trace outside its sandbox.

Programs with a `# prelude: disarm` line get `hostile/disarm_prelude.txt` there: it
disarms the audit hook (a frame walk any program can do), so those cases check that the
OS layers (seccomp, Landlock, rlimits, uid/capabilities) hold on their own; `# prelude:
syscall` adds `sc(nr, *args)`, a raw syscall through ctypes that raises OSError.
A `# message: TEXT` line also requires TEXT in the result's message (e.g. `Errno 1`:
seccomp's EPERM, not Landlock's EACCES), so a case pins the layer that stops it.

Besides its kind, every case must leave no trace: no canary file, no connection to the
listener, no process, no work dir, no System V IPC object, and TARGET (a root-owned file
outside the sandbox) unchanged in content, mode, owner, times and extended attributes.
"""

import os
from pathlib import Path

import pytest

from bcai.sandbox.python import PythonConstraints, PythonSandbox

CORPUS = Path(__file__).parent / "hostile" / "python"
DISARM = (Path(__file__).parent / "hostile" / "disarm_prelude.txt").read_text()
SYSCALL = (Path(__file__).parent / "hostile" / "syscall_prelude.txt").read_text()
CANARY = Path("/tmp/bcai-hostile-canary")
TARGET = Path("/tmp/bcai-hostile-target")
CASES = sorted(CORPUS.glob("*.py"))


def _parse(path: Path) -> tuple[str, str, str, dict[str, object]]:
    code = path.read_text().replace("# prelude: disarm\n", DISARM).replace("# prelude: syscall\n", SYSCALL)
    expect, message, overrides = None, "", {}
    for line in code.splitlines():
        if line.startswith("# expect:"):
            expect = line.split(":", 1)[1].strip()
        elif line.startswith("# message:"):
            message = line.split(":", 1)[1].strip()
        elif line.startswith("# constraints:"):
            for item in line.split(":", 1)[1].split(","):
                key, value = item.strip().split("=")
                overrides[key] = frozenset(value.split("|")) if key == "allowed_imports" else bool(int(value)) if key == "network_access" else int(value)
    assert expect, f"{path.name} has no '# expect:' line"
    return code, expect, message, overrides


def _children(pid: int) -> list[str]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += f.read().split()
    return found


def _ipc_objects() -> list[str]:
    found = []
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as f:
            found += f.read().splitlines()[1:]
    return found


def _fingerprint(path: Path) -> tuple[object, ...]:
    st = path.stat()
    return (path.read_bytes(), st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_ino, sorted(os.listxattr(path)))


@pytest.fixture(scope="module")
def target():
    TARGET.write_bytes(b"the node's own file\n")
    os.chmod(TARGET, 0o644)
    os.utime(TARGET, (1_000_000_000, 1_000_000_000))
    yield TARGET
    TARGET.unlink(missing_ok=True)


@pytest.fixture(scope="module", params=["capabilities", "user"] if os.geteuid() == 0 else ["auto"])
def box(request, workroot):
    """As root, both ways the bridge gives up root: uid 0 without capabilities (the uid of
    the zygote and the node) and `nobody` (the uid of every other job's child)."""
    os.environ["BCAI_TEST_SECRET"] = "hunter2"
    try:
        with PythonSandbox(workdir_root=str(workroot), drop_root=request.param) as sandbox:
            yield sandbox
    finally:
        os.environ.pop("BCAI_TEST_SECRET", None)


def test_corpus_is_big_enough():
    assert len(CASES) >= 80


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_program(path, box, workroot, listener, target):
    sandbox = box
    code, expect, message, overrides = _parse(path)
    port, accepted = listener
    code = code.replace("PORT", str(port)).replace("TARGET", str(target))
    CANARY.unlink(missing_ok=True)
    before, ipc_before = _fingerprint(target), _ipc_objects()
    constraints = PythonConstraints(
        **{"max_memory_mb": 128, "max_execution_time_ms": 1500, **overrides}
    )
    result = sandbox.run(code, {}, constraints)
    if expect == "ok":
        assert result.status == "ok", result.message
        assert result.outputs["n"].shape == () and int(result.outputs["n"]) == 0  # empty environment
        assert result.outputs["secret"].size == 0
    else:
        assert (result.status, result.error_kind) == ("error", expect), result.message
    assert message in result.message, result.message
    # No trace: no canary outside, no connection, no leftover process, no work dir left.
    assert not CANARY.exists()
    assert _fingerprint(target) == before
    assert _ipc_objects() == ipc_before
    assert not accepted()
    assert _children(sandbox.zygote_pid) == []
    assert list(workroot.iterdir()) == []
