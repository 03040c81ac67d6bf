"""The example in docs/ledger.md runs as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def test_docs_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    code = code.replace("/tmp/bcai-doc-chain.db", str(tmp_path / "chain.db"))
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["state"].get_balance(namespace["bob"].address) == 255
