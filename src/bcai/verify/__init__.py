"""Verification of useful work.

- `pouw.py`: the proof-of-useful-work rule of block headers (work hash below target, nonce
  bound to parent, payload and result) and the registry of proof kinds (`ProofKind`,
  `register_proof_kind`, `get_proof_kind`, `verify_work`).
- `freivalds.py`: proof kind (a), an n x n matrix product derived from the previous block,
  checked with Freivalds' algorithm in O(k n^2); `MatrixTaskCache` keeps each height's
  task (A and B, with float64 copies) for the prover and every check at that height.

Proof kind (b), a training step of a live job checked by deterministic replay, is not
built yet: no verifier is registered for it, so a block naming it is rejected with
`UnknownProofKind`.
"""

from bcai.verify.freivalds import (
    MATRIX_PRODUCT,
    MatrixProductKind,
    MatrixTask,
    MatrixTaskCache,
    compute_freivalds_vectors,
    compute_matrix_task,
    compute_matrix_task_id,
    compute_row_product,
    decode_matrix_result,
    encode_matrix_result,
    is_correct_product,
    solve_matrix_task,
)
from bcai.verify.pouw import (
    MAX_TARGET,
    ProofKind,
    WorkContext,
    WorkResult,
    compute_nonce,
    compute_nonce_within,
    compute_work_hash,
    get_proof_kind,
    get_proof_kind_names,
    is_below_target,
    register_proof_kind,
    verify_work,
)

__all__ = [
    "MATRIX_PRODUCT",
    "MAX_TARGET",
    "MatrixProductKind",
    "MatrixTask",
    "MatrixTaskCache",
    "ProofKind",
    "WorkContext",
    "WorkResult",
    "compute_freivalds_vectors",
    "compute_matrix_task",
    "compute_matrix_task_id",
    "compute_nonce",
    "compute_nonce_within",
    "compute_row_product",
    "compute_work_hash",
    "decode_matrix_result",
    "encode_matrix_result",
    "get_proof_kind",
    "get_proof_kind_names",
    "is_below_target",
    "is_correct_product",
    "register_proof_kind",
    "solve_matrix_task",
    "verify_work",
]
