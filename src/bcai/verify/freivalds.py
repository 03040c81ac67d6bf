"""Proof kind (a): an n x n integer matrix product, checked with Freivalds' algorithm.

Task. A and B are n x n matrices of int8 entries expanded from
`task_id = H("bcai/pouw/matrix", prev_hash, height, n)` by NumPy's PCG64 generator (its raw
output stream and `SeedSequence` are fixed by NumPy's stream-compatibility policy, and
it runs ~10x faster than SHAKE-256, which matters because the verifier must regenerate
both matrices); nobody can compute them before the previous block exists. The result C = A @ B is sent as int32 little-endian, row-major
(|C_ij| <= n * 2^14, which fits for n <= 2048); `model_hash = SHA-256(result bytes)`.

Verification. Instead of recomputing A @ B (n^3), the verifier draws k vectors r with
entries uniform in [0, 2^16) and checks A (B r) == C r: 3 matrix-vector products each,
O(k n^2). If C != A B, a random r passes with probability <= 2^-16 (Schwartz-Zippel), so k
vectors falsely accept with probability <= 2^(-16 k) (well under the 2^-k of 0/1 vectors).
The vectors are derived from the *work hash* H(prev_hash, tx_root, model_hash, nonce),
i.e. only after the prover has fixed its result, payload and nonce; a wrong result cannot
be tuned to vectors it does not know yet.

Exactness. All arithmetic is done in float64 (BLAS), which is exact here: |B r| <= 2^34,
|A (B r)| and |C r| <= 2^52 < 2^53 for n <= 2048. Entries of C beyond the largest possible
product are rejected before the check, so nothing overflows.

The seed's version recomputed the whole product (verification as costly as solving),
hashed a nonce that was not bound to the result or the header, and took tasks with a
wall-clock timestamp; all three are fixed here.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import numpy as np

from bcai.crypto import sha256
from bcai.encoding import encode
from bcai.errors import InvalidProof
from bcai.verify.pouw import ProofKind, WorkContext, WorkResult, register_proof_kind

MIN_N = 2
MAX_N = 2048
MAX_K = 64
R_BITS = 16


@dataclass(frozen=True, slots=True)
class MatrixTask:
    task_id: bytes
    n: int
    a: np.ndarray  # int8, n x n
    b: np.ndarray  # int8, n x n


def _check_size(n: int, k: int = 1) -> None:
    if not MIN_N <= n <= MAX_N:
        raise ValueError(f"matrix size must be in {MIN_N}..{MAX_N}, got {n}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"Freivalds vector count must be in 1..{MAX_K}, got {k}")


def compute_matrix_task_id(prev_hash: bytes, height: int, n: int) -> bytes:
    return sha256(encode(["bcai/pouw/matrix", prev_hash, height, n]))


def compute_matrix_task(prev_hash: bytes, height: int, n: int) -> MatrixTask:
    _check_size(n)
    task_id = compute_matrix_task_id(prev_hash, height, n)
    seed = np.random.SeedSequence(int.from_bytes(task_id, "big"))
    words = np.random.PCG64(seed).random_raw((2 * n * n + 7) // 8)
    if sys.byteorder != "little":  # the byte order of the stream is little-endian everywhere
        words = words.byteswap()
    entries = words.view(np.int8)[: 2 * n * n]
    return MatrixTask(task_id, n, entries[: n * n].reshape(n, n), entries[n * n :].reshape(n, n))


def solve_matrix_task(task: MatrixTask) -> np.ndarray:
    """The exact product A @ B as int64 (float64 BLAS is exact for these bounds)."""
    product = task.a.astype(np.float64) @ task.b.astype(np.float64)
    return product.astype(np.int64)


def encode_matrix_result(c: np.ndarray) -> bytes:
    return np.ascontiguousarray(c, dtype="<i4").tobytes()


def decode_matrix_result(data: bytes, n: int) -> np.ndarray:
    """Parse result bytes; raise `InvalidProof` on a wrong size or an impossible entry."""
    if not isinstance(data, bytes) or len(data) != 4 * n * n:
        raise InvalidProof(f"a {n}x{n} result is {4 * n * n} bytes")
    c = np.frombuffer(data, dtype="<i4").reshape(n, n)
    bound = n * 128 * 128
    if int(c.max()) > bound or int(c.min()) < -bound:
        raise InvalidProof("result holds an entry no product of int8 matrices can have")
    return c


def compute_freivalds_vectors(work_hash: bytes, n: int, k: int) -> np.ndarray:
    """k vectors (as an n x k float64 matrix) with entries in [0, 2^16), drawn from the work hash."""
    raw = hashlib.shake_256(b"bcai/pouw/freivalds" + work_hash).digest(2 * n * k)
    return np.frombuffer(raw, dtype="<u2").reshape(n, k).astype(np.float64)


def is_correct_product(a: np.ndarray, b: np.ndarray, c: np.ndarray, r: np.ndarray) -> bool:
    """Freivalds' check A (B r) == C r for every column of r: O(k n^2), no n^3 product."""
    left = a.astype(np.float64) @ (b.astype(np.float64) @ r)
    right = c.astype(np.float64) @ r
    return bool(np.array_equal(left, right))


class MatrixProductKind(ProofKind):
    name = "matrix"

    def compute_task_id(self, ctx: WorkContext) -> bytes:
        return compute_matrix_task_id(ctx.prev_hash, ctx.height, ctx.matrix_n)

    def solve(self, ctx: WorkContext) -> WorkResult:
        task = compute_matrix_task(ctx.prev_hash, ctx.height, ctx.matrix_n)
        result = encode_matrix_result(solve_matrix_task(task))
        return WorkResult(task.task_id, sha256(result), result)

    def verify(self, ctx: WorkContext, task_id: bytes, model_hash: bytes, proof: bytes, work_hash: bytes) -> None:
        _check_size(ctx.matrix_n, ctx.freivalds_k)
        # the result must be the one the header commits to
        if sha256(proof) != model_hash:
            raise InvalidProof("model_hash is not the hash of the result")
        c = decode_matrix_result(proof, ctx.matrix_n)
        task = compute_matrix_task(ctx.prev_hash, ctx.height, ctx.matrix_n)
        if task.task_id != task_id:
            raise InvalidProof("task_id is not the task assigned at this height")
        r = compute_freivalds_vectors(work_hash, ctx.matrix_n, ctx.freivalds_k)
        if not is_correct_product(task.a, task.b, c, r):
            raise InvalidProof("Freivalds check failed: the result is not A @ B")


MATRIX_PRODUCT = MatrixProductKind()
register_proof_kind(MATRIX_PRODUCT)
