"""The quick-start example in docs/p2p.md runs as written."""

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "p2p.md"


def test_quick_start_example_runs() -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "b got b'block 1'" in result.stdout and "b'cba'" in result.stdout
    assert "'gpus': 8" in result.stdout
