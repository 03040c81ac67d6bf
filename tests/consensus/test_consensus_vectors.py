"""Consensus test vectors: canonical bytes, ids, hashes and schedules another implementation
can check itself against (tests/vectors/consensus/vectors.json).

`BCAI_WRITE_VECTORS=1` rewrites the file from this implementation; otherwise every entry is
recomputed and compared.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from bcai.consensus import (
    PRECOMMIT,
    PREVOTE,
    BlockHeader,
    CommitCertificate,
    DuplicateVoteEvidence,
    Validator,
    ValidatorSet,
    compute_next_target,
    encode_message,
    sign_vote,
)
from bcai.crypto import PrivateKey, sha256
from bcai.encoding import encode
from bcai.verify import compute_freivalds_vectors, compute_matrix_task, compute_work_hash, solve_matrix_task

PATH = Path(__file__).resolve().parents[1] / "vectors" / "consensus" / "vectors.json"
CHAIN = "bcai-vectors"
KEYS = [PrivateKey.from_label(f"vector-validator-{i}") for i in range(4)]


def compute_vectors() -> dict[str, Any]:
    vote = sign_vote(KEYS[0], CHAIN, PRECOMMIT, 5, 2, sha256(b"block"))
    nil = sign_vote(KEYS[1], CHAIN, PREVOTE, 5, 0, None)
    twin = sign_vote(KEYS[1], CHAIN, PREVOTE, 5, 0, sha256(b"other"))
    evidence = DuplicateVoteEvidence.of(twin, nil)
    header = BlockHeader(
        CHAIN, 7, 1_700_000_000_000, sha256(b"prev"), sha256(b"txs"), sha256(b"evidence"), sha256(b"app"),
        sha256(b"last commit"), KEYS[2].address.raw, "matrix", sha256(b"task"), sha256(b"model"), 42, 2**62,
    )
    cert = CommitCertificate(5, 2, sha256(b"block"), tuple(sorted((k.address.raw, bytes(64)) for k in KEYS[:3])))
    task = compute_matrix_task(sha256(b"prev"), 7, 8)
    vs = ValidatorSet([Validator(k.public_key, p) for k, p in zip(KEYS, (1, 2, 3, 4))])
    return {
        "chain_id": CHAIN,
        "keys": "PrivateKey.from_label('vector-validator-<i>')",
        "vote_wire_hex": encode_message(vote).hex(),
        "nil_vote_wire_hex": encode_message(nil).hex(),
        "evidence_id_hex": evidence.evidence_id.hex(),
        "evidence_offence_id_hex": evidence.offence_id.hex(),
        "header_block_id_hex": header.block_id.hex(),
        "certificate_cbor_hex": encode(cert.to_list()).hex(),
        "work_hash_hex": compute_work_hash(sha256(b"prev"), sha256(b"txs"), sha256(b"model"), 42).hex(),
        "matrix_task_n8_height7": {
            "task_id_hex": task.task_id.hex(),
            "a_first_row": task.a[0].tolist(),
            "b_first_row": task.b[0].tolist(),
            "c_first_row": solve_matrix_task(task)[0].tolist(),
        },
        "freivalds_vectors_n4_k2": compute_freivalds_vectors(sha256(b"work"), 4, 2).astype(np.int64).tolist(),
        "proposers_powers_1_2_3_4_rounds_0_9": [
            next(i for i, k in enumerate(KEYS) if k.address.raw == vs.get_proposer(r).address) for r in range(10)
        ],
        "next_target": [
            [1_000_000, interval, 5000, compute_next_target(1_000_000, interval, 5000)]
            for interval in (0, 2500, 4900, 5000, 5100, 10_000)
        ],
    }


def test_consensus_vectors() -> None:
    current = compute_vectors()
    if os.environ.get("BCAI_WRITE_VECTORS") == "1":
        PATH.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    stored = json.loads(PATH.read_text())
    assert stored == json.loads(json.dumps(current))
