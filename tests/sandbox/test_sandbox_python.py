"""The Python bridge: the program interface, tensors in and out, constraints, metrics."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from bcai.errors import ConfigError, SandboxMemoryLimit
from bcai.sandbox.python import DEFAULT_ALLOWED_IMPORTS, PythonConstraints, PythonSandbox
from bcai.sandbox.result import ExecutionResult

FAST = PythonConstraints(max_execution_time_ms=3000, max_memory_mb=128)


def test_outputs_dict_and_inputs(sandbox):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    result = sandbox.run("outputs['y'] = inputs['x'].T @ inputs['x']\nprint('rows', inputs['x'].shape[0])", {"x": x}, FAST)
    assert isinstance(result, ExecutionResult) and result.ok, result.message
    np.testing.assert_array_equal(result.outputs["y"], x.T @ x)
    assert result.outputs["y"].dtype == np.float32
    assert result.log == "rows 3\n"
    assert result.metrics.wall_time_ms > 0 and result.metrics.cpu_time_ms > 0
    assert result.metrics.peak_memory_bytes > 1 << 20
    assert result.metrics.fuel_used is None


def test_main_function_interface(sandbox):
    code = "import numpy as np\ndef main(inputs):\n    return {'s': np.sum(inputs['a']), 'n': 3, 'l': [1.5, 2.5]}"
    result = sandbox.run(code, {"a": np.ones(5, dtype=np.int64)}, FAST)
    assert result.ok, result.message
    assert int(result.outputs["s"]) == 5 and result.outputs["s"].shape == ()
    assert result.outputs["l"].tolist() == [1.5, 2.5]


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int32", "int64", "float16", "float32", "float64", "complex128"])
def test_dtypes_round_trip(sandbox, dtype):
    x = (np.arange(6) % 3).astype(dtype).reshape(2, 3)
    result = sandbox.run("outputs['x'] = inputs['x']", {"x": x}, FAST)
    assert result.ok, result.message
    assert result.outputs["x"].dtype == x.dtype
    np.testing.assert_array_equal(result.outputs["x"], x)


def test_inputs_are_read_only(sandbox):
    result = sandbox.run("inputs['x'][0] = 5", {"x": np.zeros(3)}, FAST)
    assert result.error_kind == "crashed" and "read-only" in result.message


def test_big_endian_and_non_contiguous_inputs_cross(sandbox):
    x = np.arange(10, dtype=">i4")[::2]
    result = sandbox.run("outputs['x'] = inputs['x'] + 1", {"x": x}, FAST)
    assert result.outputs["x"].tolist() == [1, 3, 5, 7, 9]


def test_expected_outputs(sandbox):
    assert sandbox.run("outputs['a'] = 1", {}, FAST, expected_outputs=["a"]).ok
    missing = sandbox.run("outputs['a'] = 1", {}, FAST, expected_outputs=["a", "b"])
    assert missing.error_kind == "output_invalid" and "'b'" in missing.message
    extra = sandbox.run("outputs['a'] = 1; outputs['c'] = 2", {}, FAST, expected_outputs=["a"])
    assert extra.error_kind == "output_invalid"


def test_file_operations_inside_the_work_dir_are_counted(sandbox):
    code = "open('a.txt', 'w').write('hello')\noutputs['n'] = len(open('a.txt').read())"
    assert sandbox.run(code, {}, PythonConstraints(max_file_operations=2)).outputs["n"] == 5
    assert sandbox.run(code, {}, PythonConstraints(max_file_operations=1)).error_kind == "file_ops_limit"
    assert sandbox.run(code, {}, PythonConstraints()).error_kind == "file_ops_limit"


def test_each_execution_gets_a_fresh_process_and_work_dir(sandbox):
    write = "open('state.txt', 'w').write('x')\nimport numpy as np\nnp.STOLEN = 1"
    assert sandbox.run(write, {}, PythonConstraints(max_file_operations=1)).ok
    check = "import numpy as np\noutputs['stolen'] = hasattr(np, 'STOLEN')\ntry:\n    open('state.txt')\n    outputs['file'] = True\nexcept FileNotFoundError:\n    outputs['file'] = False"
    result = sandbox.run(check, {}, PythonConstraints(max_file_operations=1))
    assert result.ok, result.message
    assert not bool(result.outputs["stolen"]) and not bool(result.outputs["file"])


def test_allowed_imports_extend_the_default(sandbox):
    code = "import time\noutputs['t'] = time.monotonic() > 0"
    assert sandbox.run(code, {}, FAST).error_kind == "import_denied"
    assert sandbox.run(code, {}, PythonConstraints(allowed_imports=frozenset({"time"}))).ok
    assert "numpy" in DEFAULT_ALLOWED_IMPORTS


def test_stdlib_modules_may_import_what_they_need(sandbox):
    # `random` imports `os` internally: only the program's own imports are checked.
    code = "import random, statistics, json\nrandom.seed(1)\noutputs['m'] = statistics.mean([random.random() for _ in range(10)])"
    assert sandbox.run(code, {}, FAST).ok


def test_network_access_when_granted(sandbox, listener):
    port, accepted = listener
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.close()\noutputs['ok'] = True"
    denied = sandbox.run(code, {}, PythonConstraints(allowed_imports=frozenset({"socket"})))
    assert denied.error_kind == "network_denied"
    assert not accepted()
    granted = sandbox.run(code, {}, PythonConstraints(allowed_imports=frozenset({"socket"}), network_access=True))
    assert granted.ok, granted.message
    assert accepted()


def test_memory_limit_scales_with_the_constraint(sandbox):
    code = "x = bytearray(200 * 1024 * 1024)\noutputs['n'] = len(x)"
    assert sandbox.run(code, {}, PythonConstraints(max_memory_mb=64)).error_kind == "memory_limit"
    assert sandbox.run(code, {}, PythonConstraints(max_memory_mb=400)).ok


def test_raise_for_error(sandbox):
    result = sandbox.run("x = bytearray(1 << 33)", {}, FAST)
    with pytest.raises(SandboxMemoryLimit):
        result.raise_for_error()


def test_uncaught_exception_is_a_crash_with_its_message(sandbox):
    result = sandbox.run("raise ValueError('bad weights')", {}, FAST)
    assert result.error_kind == "crashed" and "ValueError: bad weights" in result.message


FORGED_MESSAGE = """# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"kind": "crashed", "log": "", "message": "x" * (3 << 20), "status": "error", "tensors": []}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
"""


def test_a_forged_error_message_is_cut_like_the_childs_own(sandbox):
    # The node keeps (and may log or publish) a result's message: 3 MiB of it came through.
    code = FORGED_MESSAGE.replace("# prelude: disarm\n", (Path(__file__).parent / "hostile" / "disarm_prelude.txt").read_text())
    result = sandbox.run(code)
    assert result.error_kind == "crashed" and result.message == "x" * 2000


def test_syntax_error_is_a_crash(sandbox):
    result = sandbox.run("def f(:\n", {}, FAST)
    assert result.error_kind == "crashed" and "compile" in result.message


def test_log_is_bounded(sandbox):
    result = sandbox.run("for i in range(10**5):\n    print('x' * 100)", {}, PythonConstraints(max_log_bytes=1000))
    assert result.ok and len(result.log) == 1000


def test_run_python_default_sandbox():
    from bcai.sandbox import run_python

    result = run_python("outputs['y'] = inputs['x'] * 2", {"x": np.arange(3)})
    assert result.outputs["y"].tolist() == [0, 2, 4]


def test_invalid_constraints_are_refused():
    with pytest.raises(ConfigError):
        PythonConstraints(max_memory_mb=0)
    with pytest.raises(ConfigError):
        PythonConstraints(max_execution_time_ms=-5)
    with pytest.raises(ConfigError):
        PythonConstraints(max_file_operations=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        PythonConstraints(network_access="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="never be allowed"):
        PythonConstraints(allowed_imports=frozenset({"ctypes"}))
    with pytest.raises(ConfigError, match="not a module name"):
        PythonConstraints(allowed_imports=frozenset({"os; rm -rf"}))


def test_invalid_inputs_are_refused(sandbox):
    with pytest.raises(ConfigError, match="not a numpy array"):
        sandbox.run("pass", {"x": [1, 2]}, FAST)
    with pytest.raises(ConfigError, match="not an identifier"):
        sandbox.run("pass", {"bad name": np.zeros(1)}, FAST)
    with pytest.raises(ConfigError, match="cannot cross"):
        sandbox.run("pass", {"x": np.array(["text"])}, FAST)
    with pytest.raises(ConfigError):
        sandbox.run(b"pass", {}, FAST)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        sandbox.run("pass", {}, FAST, expected_outputs="y")


DISARMED_UID = (Path(__file__).parent / "hostile" / "disarm_prelude.txt").read_text() + """
outputs["uid"] = OS["getuid"]()
import numpy as np
outputs["y"] = np.arange(3) * 2
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root children change uid")
@pytest.mark.parametrize("mode, uid", [("user", 65534), ("capabilities", 0)])
def test_root_children_give_up_root(workroot, mode, uid):
    with PythonSandbox(workdir_root=str(workroot), drop_root=mode) as box:
        assert box.privilege_mode == ("user 65534" if mode == "user" else "no-capabilities")
        result = box.run(DISARMED_UID, {}, FAST)
    assert result.ok, result.message
    assert int(result.outputs["uid"]) == uid and result.outputs["y"].tolist() == [0, 2, 4]


def test_invalid_drop_root_mode():
    with pytest.raises(ConfigError):
        PythonSandbox(drop_root="sometimes")


def test_concurrent_runs_do_not_mix(sandbox):
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int):
        return i, sandbox.run("outputs['y'] = inputs['x'] + 1", {"x": np.full(3, i)}, FAST)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, result in pool.map(one, range(12)):
            assert result.ok, result.message
            assert result.outputs["y"].tolist() == [i + 1] * 3


# -- kernel layers: what the zygote found, and refusing without them -----------------------

from bcai.errors import SandboxUnavailable
from bcai.sandbox.python import bridge


def test_the_zygote_reports_working_landlock_and_seccomp(sandbox):
    # On this machine (root in a container, kernel >= 5.13) both layers must really bite:
    # the zygote probes them in a throw-away child, not by asking for a version only.
    found = sandbox.protections
    assert found is not None and found["seccomp"] is True and found["landlock_abi"] >= 1


@pytest.mark.parametrize(
    "found, mode, allow, refused",
    [
        ({"landlock_abi": 7, "seccomp": True}, "no-capabilities", False, None),
        ({"landlock_abi": 0, "seccomp": True}, "user 65534", True, None),
        ({"landlock_abi": 0, "seccomp": True}, "unprivileged", True, None),
        ({"landlock_abi": 7, "seccomp": False}, "user 65534", True, "seccomp"),
        ({"landlock_abi": 0, "seccomp": True}, "no-capabilities", True, "keep uid 0"),
        ({"landlock_abi": 0, "seccomp": True}, "user 65534", False, "allow_without_landlock"),
        ({}, "unprivileged", True, "seccomp"),
    ],
)
def test_protection_policy(found, mode, allow, refused):
    if refused is None:
        bridge.check_protections(found, mode, allow)
        return
    with pytest.raises(SandboxUnavailable, match=refused) as info:
        bridge.check_protections(found, mode, allow)
    assert info.value.code == "sandbox_unavailable"


def test_parse_ready():
    assert bridge.parse_ready(b'READY {"landlock_abi": 3, "seccomp": true}') == {"landlock_abi": 3, "seccomp": True}
    for bad in (b"", b"READY", b"READY {", b"READY [1]", b"HELLO {}"):
        assert bridge.parse_ready(bad) is None


def test_a_host_without_landlock_is_refused_before_any_code_runs(workroot, monkeypatch):
    # What the zygote says on a kernel without Landlock: the bridge refuses to run (no
    # silent fallback), stops the zygote, and no work dir is made.
    monkeypatch.setattr(bridge, "parse_ready", lambda message: {"landlock_abi": 0, "seccomp": True})
    box = PythonSandbox(workdir_root=str(workroot), drop_root="capabilities" if os.geteuid() == 0 else "auto")
    with pytest.raises(SandboxUnavailable, match="Landlock"):
        box.run("outputs['x'] = 1")
    assert box.zygote_pid is None and box.protections is None
    assert list(workroot.iterdir()) == []
    box.close()


def test_count_entries_stops_at_the_limit(tmp_path):
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_text("x")
    assert bridge.count_entries(str(tmp_path), 6) is None
    assert bridge.count_entries(str(tmp_path), 5) == 6
    assert bridge.count_entries(str(tmp_path / "missing"), 0) is None


def test_file_budget_counts_entries_left_after_the_result(sandbox):
    # The program sends its result, then keeps creating files for the rest of its time:
    # the parent still watches the work dir until the process is gone.
    code = (
        "# prelude: disarm\n"
        + "OS['close'](4)\n"
        + "for i in range(50):\n    open(f'f{i}', 'w').close()\n"
    )
    disarm = (Path(__file__).parent / "hostile" / "disarm_prelude.txt").read_text()
    result = sandbox.run(code.replace("# prelude: disarm\n", disarm), {}, PythonConstraints(max_file_operations=10))
    assert result.error_kind == "file_ops_limit", result.message


def test_compiling_the_program_counts_against_its_memory_limit(sandbox):
    # 3 MB of tuple literals take ~740 MB to compile; compiled before the rlimits, that
    # was host memory outside max_memory_mb. Now it is the program's memory_limit.
    code = "x = [" + "(0, 1.5, 'a')," * 250_000 + "]\noutputs['n'] = len(x)"
    result = sandbox.run(code, {}, PythonConstraints(max_memory_mb=64, max_execution_time_ms=20_000))
    assert (result.status, result.error_kind) == ("error", "memory_limit"), result.message
    assert result.metrics.peak_memory_bytes < 400 << 20


def test_count_entries_treats_an_unlistable_dir_as_over(tmp_path):
    deep = tmp_path
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for _ in range(20):  # 20 x 256 bytes: past PATH_MAX, built relative to an fd
            os.mkdir("d" * 255, dir_fd=fd)
            child = os.open("d" * 255, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    assert bridge.count_entries(str(deep), 1000) == 1001


def _nested_chain(root: Path, depth: int) -> None:
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)


def test_remove_workdir_does_not_recurse(tmp_path):
    # shutil.rmtree (3.11) recursed once per level: a deep enough chain raised
    # RecursionError out of PythonSandbox.run. Here "deep enough" is 300 levels.
    workdir = tmp_path / "job"
    workdir.mkdir()
    _nested_chain(workdir, 300)
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 100)
    try:
        bridge.remove_workdir(str(workdir))
    finally:
        sys.setrecursionlimit(limit)
    assert not workdir.exists()


LOCKED_OUT = """
import os, sys
os.umask(0)
os.mkdir("locked", 0o300)                  # write + search, no read: unlistable to its owner
open("locked/f", "w").close()
os.mkdir("locked/inner", 0o300)
open("locked/inner/g", "w").close()
os.symlink(sys.argv[2], "locked/inner/link")  # removed, never followed
from bcai.sandbox.python.bridge import remove_workdir
remove_workdir(sys.argv[1])
sys.exit(1 if os.path.exists(sys.argv[1]) else 0)
"""


def test_remove_workdir_reopens_dirs_the_job_made_unlistable(workroot):
    # A bridge without root has no DAC override: rmtree could not list a dir the job
    # (same uid) made with mode 0o300, and the dir stayed with its files. As root, the
    # whole scene runs as `nobody`, the bridge's part included.
    scene = workroot / "locked-scene"  # the bridge's own workdir_root
    workdir, outside = scene / "job", scene / "outside"
    scene.mkdir()
    workdir.mkdir()
    outside.mkdir()
    (outside / "keep").write_text("not the job's")
    if os.geteuid() == 0:
        for path in (scene, workdir):
            os.chown(path, 65534, 65534)
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
            os.chdir(workdir)
            sys.argv = ["locked-out", str(workdir), str(outside)]
            exec(compile(LOCKED_OUT, "locked-out", "exec"), {"__name__": "locked_out"})
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0
        assert not workdir.exists()
        assert (outside / "keep").read_text() == "not the job's"
    finally:
        bridge.remove_workdir(str(scene))


SIBLING_SPY = """# prelude: disarm
# Find another job's child by pid and read where its work dir is (/proc/<pid>/cwd is a
# readlink, which Landlock does not guard; only ptrace-style access rules do).
me = OS["getpid"]()
found = []
for pid in range(max(2, me - 300), me + 300):
    if pid == me:
        continue
    try:
        target = OS["readlink"](f"/proc/{pid}/cwd")
    except OSError:
        continue
    if "bcai-sandbox-" in target:
        found.append(pid)
outputs["found"] = len(found)
outputs["sees_itself"] = "bcai-sandbox-" in OS["readlink"]("/proc/self/cwd")
"""


@pytest.mark.parametrize("mode", ["capabilities", "user"] if os.geteuid() == 0 else ["auto"])
def test_a_job_cannot_find_a_neighbours_work_dir_through_proc(workroot, mode):
    # A sibling has the same uid and no capabilities either, so only Landlock's ptrace
    # rule (no access to a process outside the own domain; each child has its own)
    # keeps /proc/<sibling>/cwd closed. The spy's method works on itself.
    from concurrent.futures import ThreadPoolExecutor

    disarm = (Path(__file__).parent / "hostile" / "disarm_prelude.txt").read_text()
    spy = SIBLING_SPY.replace("# prelude: disarm\n", disarm)
    with PythonSandbox(workdir_root=str(workroot), drop_root=mode) as box, ThreadPoolExecutor(max_workers=2) as pool:
        sleeper = pool.submit(box.run, "x = 0\nwhile True:\n    x += 1\n", {}, PythonConstraints(max_execution_time_ms=4000))
        import time

        time.sleep(1.0)  # the sleeper is running
        result = box.run(spy, {}, PythonConstraints(max_execution_time_ms=3000))
        assert sleeper.result().error_kind == "time_limit"
    assert result.ok, result.message
    assert bool(result.outputs["sees_itself"]) and int(result.outputs["found"]) == 0


def _wait_for_locked_child(zygote: int, deadline: float) -> int:
    """The pid of the zygote's child once its OOM score is set (it is locking down)."""
    import time

    while time.monotonic() < deadline:
        for task in os.listdir(f"/proc/{zygote}/task"):
            with open(f"/proc/{zygote}/task/{task}/children") as f:
                for pid in f.read().split():
                    try:
                        with open(f"/proc/{pid}/oom_score_adj") as score:
                            if score.read().strip() == "1000":
                                return int(pid)
                    except OSError:
                        pass
        time.sleep(0.02)
    raise AssertionError("no child with OOM score 1000 appeared")


@pytest.mark.parametrize("mode", ["capabilities", "user"] if os.geteuid() == 0 else ["auto"])
def test_a_child_is_the_first_oom_victim_and_not_dumpable(workroot, mode):
    # Not dumpable: no core dump through a core_pattern pipe (which ignores RLIMIT_CORE
    # 0), and a process of the child's uid without CAP_SYS_PTRACE cannot open its
    # /proc/<pid>/environ or mem. A uid-0 child without capabilities stayed dumpable.
    import time
    from concurrent.futures import ThreadPoolExecutor

    from bcai.sandbox.python import privileges

    with PythonSandbox(workdir_root=str(workroot), drop_root=mode) as box, ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(box.run, "x = 0\nwhile True:\n    x += 1\n", {}, PythonConstraints(max_execution_time_ms=3000))
        pid = _wait_for_locked_child(box.zygote_pid, time.monotonic() + 2.5)
        time.sleep(0.3)  # past the lock-down, into the loop
        helper = os.fork()
        if helper == 0:
            code = 2
            try:
                if mode == "user":
                    os.setresgid(65534, 65534, 65534)
                    os.setresuid(65534, 65534, 65534)
                elif os.geteuid() == 0:
                    privileges.drop_capabilities()
                open(f"/proc/{pid}/environ", "rb").close()
                code = 1
            except PermissionError:
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(helper, 0)
        assert busy.result().error_kind == "time_limit"
    assert os.waitstatus_to_exitcode(status) == 0


HOSTILE_HOST = """
import errno, sys
import pyseccomp
from bcai.errors import SandboxUnavailable
from bcai.sandbox.python import PythonSandbox

# Make this process (and so the zygote it starts) a host without {layer}.
rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
if "{layer}" == "landlock":
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "landlock_create_ruleset")
else:
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "seccomp")
    rules.add_rule(pyseccomp.ERRNO(errno.EINVAL), "prctl", pyseccomp.Arg(0, pyseccomp.EQ, 22))
rules.load()
box = PythonSandbox(workdir_root=sys.argv[1], drop_root="{mode}", allow_without_landlock={allow})
try:
    result = box.run("outputs['x'] = 1")
except SandboxUnavailable as exc:
    print("refused", exc.code, exc)
else:
    print("ran", result.status, box.protections)
box.close()
"""


@pytest.mark.parametrize(
    "layer, mode, allow, expected",
    [
        ("landlock", "capabilities", True, "refused sandbox_unavailable Landlock does not work"),
        ("landlock", "user", False, "refused sandbox_unavailable Landlock does not work"),
        ("landlock", "user", True, "ran ok {'landlock_abi': 0, 'seccomp': True}"),
        ("seccomp", "user", True, "refused sandbox_unavailable seccomp filters do not work"),
    ],
)
def test_a_real_host_without_a_layer_is_refused(workroot, layer, mode, allow, expected):
    # No monkeypatching: the kernel really refuses the layer to this process tree (a
    # seccomp filter of our own, inherited by the zygote), and the zygote's probe sees it.
    import subprocess
    import sys

    if os.geteuid() != 0 and mode != "user":
        mode = "auto"
    script = HOSTILE_HOST.format(layer=layer, mode=mode, allow=allow)
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", script, str(workroot)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert done.stdout.startswith(expected), done.stdout + done.stderr
    assert list(workroot.iterdir()) == []
