"""The hostile corpus (tests/sandbox/hostile/python/*.py): each program must end in the
error kind its `# expect:` line names and leave no trace outside its sandbox.

Programs with a `# prelude: disarm` line get `hostile/disarm_prelude.txt` there: it
disarms the audit hook (a frame walk any program can do), so those cases check that the
OS layers (seccomp, Landlock, rlimits, uid/capabilities) hold on their own.
"""

import os
from pathlib import Path

import pytest

from bcai.sandbox.python import PythonConstraints

CORPUS = Path(__file__).parent / "hostile" / "python"
DISARM = (Path(__file__).parent / "hostile" / "disarm_prelude.txt").read_text()
CANARY = Path("/tmp/bcai-hostile-canary")
CASES = sorted(CORPUS.glob("*.py"))


def _parse(path: Path) -> tuple[str, str, dict[str, object]]:
    code = path.read_text().replace("# prelude: disarm\n", DISARM)
    expect, overrides = None, {}
    for line in code.splitlines():
        if line.startswith("# expect:"):
            expect = line.split(":", 1)[1].strip()
        elif line.startswith("# constraints:"):
            for item in line.split(":", 1)[1].split(","):
                key, value = item.strip().split("=")
                overrides[key] = frozenset(value.split("|")) if key == "allowed_imports" else int(value)
    assert expect, f"{path.name} has no '# expect:' line"
    return code, expect, overrides


def _children(pid: int) -> list[str]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += f.read().split()
    return found


def test_corpus_is_big_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_program(path, sandbox, workroot, listener):
    code, expect, overrides = _parse(path)
    port, accepted = listener
    code = code.replace("PORT", str(port))
    CANARY.unlink(missing_ok=True)
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
    # No trace: no canary outside, no connection, no leftover process, no work dir left.
    assert not CANARY.exists()
    assert not accepted()
    assert _children(sandbox.zygote_pid) == []
    assert list(workroot.iterdir()) == []
