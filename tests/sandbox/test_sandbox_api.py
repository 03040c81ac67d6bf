"""The public names other subsystems import, and the error kinds' place in the tree."""

import bcai.sandbox as sandbox
import bcai.sandbox.python as python
import bcai.sandbox.wasm as wasm
from bcai.errors import SANDBOX_ERRORS, BcaiError, SandboxError
from bcai.sandbox.result import PYTHON_ERROR_KINDS, WASM_ERROR_KINDS
from bcai.sandbox.python.seccomp_filter import DENIED_SYSCALLS
import pyseccomp


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


def test_every_denied_syscall_exists_on_this_architecture():
    arch = pyseccomp.system_arch()
    for name in (*DENIED_SYSCALLS, "clone3", "socket", "socketpair", "kill", "tgkill", "tkill"):
        assert pyseccomp.resolve_syscall(arch, name) >= 0, name
