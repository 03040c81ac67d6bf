"""The examples in docs/scheduler.md and docs/training.md run and their asserts hold."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def blocks(name):
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.S)


@pytest.mark.parametrize("name", ["scheduler.md", "training.md"])
def test_doc_examples_run(name):
    found = blocks(name)
    assert found, f"no python examples in {name}"
    for code in found:
        exec(compile(code, name, "exec"), {})
