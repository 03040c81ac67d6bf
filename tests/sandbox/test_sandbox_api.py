"""The public names other subsystems import, and the error kinds' place in the tree."""

import bcai.sandbox as sandbox
import bcai.sandbox.python as python
import bcai.sandbox.wasm as wasm
from bcai.errors import SANDBOX_ERRORS, BcaiError, SandboxError
from bcai.sandbox.result import PYTHON_ERROR_KINDS, WASM_ERROR_KINDS
from bcai.sandbox.python.seccomp_filter import DENIED_SYSCALLS, compute_unknown_syscalls
import platform
import pyseccomp

#: x86_64 numbers of denied syscalls newer than some libseccomp releases (2.5 stops at 456).
NEWER_SYSCALLS = {"statmount": 457, "listmount": 458, "setxattrat": 463, "removexattrat": 466, "open_tree_attr": 467}


def test_public_names():
    assert set(sandbox.__all__) == {"ExecutionMetrics", "ExecutionResult", "PythonConstraints", "PythonSandbox", "run_python"}
    assert {"PythonConstraints", "PythonSandbox", "run_python", "DEFAULT_ALLOWED_IMPORTS"} <= set(python.__all__)
    assert {"WasmEngine", "WasmLimits", "PRESETS", "run_wasm", "verify_deterministic", "get_preset"} <= set(wasm.__all__)
    for module in (sandbox, python, wasm):
        for name in module.__all__:
            assert hasattr(module, name)


def test_every_error_kind_is_a_sandbox_error_leaf():
    for kind in PYTHON_ERROR_KINDS | WASM_ERROR_KINDS:
        cls = SANDBOX_ERRORS[kind]
        assert issubclass(cls, SandboxError) and issubclass(cls, BcaiError)
        assert cls.kind == kind and cls.code == f"sandbox_{kind}"
        assert cls.__doc__ and cls.__doc__.startswith("Raised when")
    assert len({cls.code for cls in SANDBOX_ERRORS.values()}) == len(SANDBOX_ERRORS)


def test_every_denied_syscall_is_covered_on_this_architecture():
    # By name where libseccomp knows it; otherwise by number, through the ENOSYS rule for
    # every number libseccomp cannot name (a deny list must not miss newer syscalls).
    arch = pyseccomp.system_arch()
    unknown = set(compute_unknown_syscalls())
    for name in (*DENIED_SYSCALLS, "clone3", "socket", "socketpair", "kill", "tgkill", "tkill"):
        if pyseccomp.resolve_syscall(arch, name) >= 0:
            continue
        assert name in NEWER_SYSCALLS and platform.machine() == "x86_64", name
        assert NEWER_SYSCALLS[name] in unknown, name


def test_unknown_syscall_numbers_are_the_ones_libseccomp_cannot_name():
    unknown = compute_unknown_syscalls()
    assert 0 not in unknown and 59 not in unknown  # read, execve: known
    arch = pyseccomp.system_arch()
    for number in unknown:
        try:
            pyseccomp.resolve_syscall(arch, number)
        except ValueError:
            continue
        raise AssertionError(number)


def test_the_vm_bridge_holds_the_node_ceiling_on_file_operations():
    # A program's constraints are its author's: 1 000 000 files of 16 MiB each would be
    # 16 TB of the node's disk. The bridge gives the smaller of that and its ceiling.
    from types import SimpleNamespace

    from bcai.sandbox.result import ExecutionMetrics, compute_ok
    from bcai.sandbox.vm_bridge import SandboxPythonBridge

    seen = []

    class Recorder:
        def run(self, code, inputs, limits, expected):
            seen.append(limits)
            return compute_ok({}, ExecutionMetrics(0.0, 0.0, 0))

    asked = SimpleNamespace(max_memory_mb=256, max_execution_time_ms=1000, allowed_imports=(),
                            max_file_operations=1_000_000, network_access=False)
    SandboxPythonBridge(Recorder()).execute("", {}, asked)
    SandboxPythonBridge(Recorder(), max_file_operations=10).execute("", {}, asked)
    SandboxPythonBridge(Recorder()).execute("", {}, SimpleNamespace(**{**vars(asked), "max_file_operations": 3}))
    assert [limits.max_file_operations for limits in seen] == [1000, 10, 3]
