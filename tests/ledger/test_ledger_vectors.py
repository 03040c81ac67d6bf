"""Replay the committed pre / steps / post vectors in tests/vectors/ledger against this ledger.

Regenerate them (after a deliberate change of the state machine) with:

    rm -rf tests/vectors/ledger/*.json && BCAI_WRITE_VECTORS=1 .venv/bin/python -m pytest tests/ledger -q
"""

import json

import pytest

from bcai.errors import InvalidBlock, InvalidTransaction
from bcai.ledger import process_block, process_tx
from ledger_support import VECTOR_DIR, block_from_json, dump_state, load_state

VECTORS = sorted(VECTOR_DIR.glob("*.json"))


def test_vectors_are_committed():
    assert len(VECTORS) >= 50


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_replay_vector(path):
    vector = json.loads(path.read_text())
    state = load_state(vector["pre"])
    for i, step in enumerate(vector["steps"]):
        error = None
        try:
            if "tx" in step:
                process_tx(state, bytes.fromhex(step["tx"]))
            else:
                process_block(state, block_from_json(step["block"]))
        except (InvalidTransaction, InvalidBlock) as exc:
            error = exc.code
        assert error == step["error"], f"step {i}"
    assert dump_state(state) == vector["post"]
    assert state.root().hex() == vector["post_root"]
