"""Proof kind (a): an n x n integer matrix product, checked with Freivalds' algorithm.

Task. A and B are n x n matrices of int8 entries expanded from
`task_id = H("bcai/pouw/matrix", prev_hash, height, n)` by NumPy's PCG64 generator (its raw
output stream and `SeedSequence` are fixed by NumPy's stream-compatibility policy, and
it runs ~10x faster than SHAKE-256, which matters because the verifier must regenerate
both matrices); nobody can compute them before the previous block exists. The result C = A @ B is sent as int32 little-endian, row-major
(|C_ij| <= n * 2^14, which fits for n <= 2048); `model_hash = SHA-256(result bytes)`.

Verification. Instead of recomputing A @ B (n^3), the verifier draws k vectors r with
entries uniform in [0, 2^16) and checks r^T A B == r^T C (Freivalds from the left: two
row-vector products for A B and one for C, k rows at a time, O(k n^2)). If C != A B, some
column d of A B - C is nonzero and r^T d is a nonzero linear form in r, which vanishes for
at most a 2^-16 fraction of the 16-bit vectors (Schwartz-Zippel); so k vectors falsely
accept with probability <= 2^(-16 k) (well under the 2^-k of 0/1 vectors). The vectors
are derived from the *work hash* H(prev_hash, tx_root, model_hash, nonce), i.e. only after
the prover has fixed its result, payload and nonce; a wrong result cannot be tuned to
vectors it does not know yet.

Exactness. All arithmetic is done in float64 (BLAS), which is exact here because every
partial sum is an integer below 2^53 whatever the summation order: |r^T A| <= n 2^23 <=
2^34, |r^T A B| <= n^2 2^30 <= 2^52 and |r^T C| <= n^2 2^30 <= 2^52 for n <= 2048. Entries of
C beyond the largest possible product (n 2^14) are rejected before they are summed.

Cost. The task depends only on (prev_hash, height, n): every proposal and round at a
height shares it. `MatrixTaskCache` keeps the last few tasks with float64 copies of A and B
(bounded by bytes), so a validator expands them once per height and the proposer's solve
and every check reuse them. Per proposal what is left is hashing the result (SHA-256, the
largest part), and one pass over C in row blocks that range-checks each block and converts
it to float64 while it is in cache (no n x n float64 copy of C).

The seed's version recomputed the whole product (verification as costly as solving),
hashed a nonce that was not bound to the result or the header, and took tasks with a
wall-clock timestamp; all three are fixed here.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
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


C_BLOCK_ROWS = 64  # rows of C converted to float64 at a time (64 x 2048 x 8 B = 1 MiB at most)


@dataclass(frozen=True, slots=True)
class MatrixTask:
    """A height's task. `a64`/`b64` are float64 copies of A and B (what BLAS multiplies);
    every array is read-only, since a cached task is shared by every caller."""

    task_id: bytes
    n: int
    a: np.ndarray  # int8, n x n
    b: np.ndarray  # int8, n x n
    a64: np.ndarray  # float64, n x n
    b64: np.ndarray  # float64, n x n

    @property
    def nbytes(self) -> int:
        return self.a.nbytes + self.b.nbytes + self.a64.nbytes + self.b64.nbytes


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
    a, b = entries[: n * n].reshape(n, n), entries[n * n :].reshape(n, n)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for array in (a, b, a64, b64):
        array.flags.writeable = False
    return MatrixTask(task_id, n, a, b, a64, b64)


class MatrixTaskCache:
    """The last few tasks by (prev_hash, height, n), least recently used first out.

    The key is everything a task is derived from, so an entry can never be served for
    another parent, height or size; at most `max_entries` tasks and `max_bytes` of arrays
    are kept (one task is always kept, whatever its size). Safe to share between threads.
    """

    def __init__(self, max_entries: int = 4, max_bytes: int = 192 << 20) -> None:
        if max_entries < 1 or max_bytes < 0:
            raise ValueError("a task cache holds at least one entry and a non-negative byte budget")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._tasks: OrderedDict[tuple[bytes, int, int], MatrixTask] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, prev_hash: bytes, height: int, n: int) -> MatrixTask:
        key = (bytes(prev_hash), int(height), int(n))
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                self._tasks.move_to_end(key)
                self.hits += 1
                return task
        task = compute_matrix_task(prev_hash, height, n)  # outside the lock: may take ms
        with self._lock:
            self.misses += 1
            if key not in self._tasks:
                self._tasks[key] = task
                self._bytes += task.nbytes
            while len(self._tasks) > 1 and (len(self._tasks) > self.max_entries or self._bytes > self.max_bytes):
                _, old = self._tasks.popitem(last=False)
                self._bytes -= old.nbytes
            return self._tasks.get(key, task)

    def clear(self) -> None:
        with self._lock:
            self._tasks.clear()
            self._bytes = 0


def solve_matrix_task(task: MatrixTask) -> np.ndarray:
    """The exact product A @ B as int64 (float64 BLAS is exact for these bounds)."""
    return (task.a64 @ task.b64).astype(np.int64)


def encode_matrix_result(c: np.ndarray) -> bytes:
    return np.ascontiguousarray(c, dtype="<i4").tobytes()


def decode_matrix_result(data: bytes, n: int) -> np.ndarray:
    """Parse result bytes; raise `InvalidProof` on a wrong size or an impossible entry."""
    if not isinstance(data, bytes) or len(data) != 4 * n * n:
        raise InvalidProof(f"a {n}x{n} result is {4 * n * n} bytes")
    c = np.frombuffer(data, dtype="<i4").reshape(n, n)
    _check_entries(c, n)
    return c


def _check_entries(block: np.ndarray, n: int) -> None:
    bound = n * 128 * 128
    if int(block.max()) > bound or int(block.min()) < -bound:
        raise InvalidProof("result holds an entry no product of int8 matrices can have")


def compute_freivalds_vectors(work_hash: bytes, n: int, k: int) -> np.ndarray:
    """k vectors (as an n x k float64 matrix) with entries in [0, 2^16), drawn from the work hash."""
    raw = hashlib.shake_256(b"bcai/pouw/freivalds" + work_hash).digest(2 * n * k)
    return np.frombuffer(raw, dtype="<u2").reshape(n, k).astype(np.float64)


def is_correct_product(a: np.ndarray, b: np.ndarray, c: np.ndarray, r: np.ndarray) -> bool:
    """Freivalds' check r^T A B == r^T C for every column of r: O(k n^2), no n^3 product.

    `a` and `b` may be int8 or float64 (a task's `a64`/`b64`, used without a copy); `c`
    holds integers, int32 or wider, within the bound `decode_matrix_result` enforces.
    """
    rows = np.ascontiguousarray(r.T, dtype=np.float64)  # k x n
    left = (rows @ _as_float64(a)) @ _as_float64(b)
    return bool(np.array_equal(left, compute_row_product(rows, c)))


def compute_row_product(rows: np.ndarray, c: np.ndarray, check_entries: bool = False) -> np.ndarray:
    """rows @ C (k x n) in blocks of `C_BLOCK_ROWS` rows of C, each converted to float64
    while it is in cache; with `check_entries`, every block is range-checked first
    (`InvalidProof`), so a result is read from memory once for both."""
    n = c.shape[0]
    total = np.zeros((rows.shape[0], c.shape[1]))
    block = np.empty((min(C_BLOCK_ROWS, n), c.shape[1]))
    for start in range(0, n, C_BLOCK_ROWS):
        part = c[start : start + C_BLOCK_ROWS]
        if check_entries:
            _check_entries(part, n)
        buffer = block[: len(part)]
        np.copyto(buffer, part)
        total += rows[:, start : start + len(part)] @ buffer
    return total


def _as_float64(m: np.ndarray) -> np.ndarray:
    return m if m.dtype == np.float64 else m.astype(np.float64)


class MatrixProductKind(ProofKind):
    """Kind (a). `tasks` caches each height's task for the prover and the verifier alike."""

    name = "matrix"

    def __init__(self, tasks: MatrixTaskCache | None = None) -> None:
        self.tasks = tasks if tasks is not None else MatrixTaskCache()

    def compute_task_id(self, ctx: WorkContext) -> bytes:
        return compute_matrix_task_id(ctx.prev_hash, ctx.height, ctx.matrix_n)

    def solve(self, ctx: WorkContext) -> WorkResult:
        task = self.tasks.get(ctx.prev_hash, ctx.height, ctx.matrix_n)
        result = encode_matrix_result(solve_matrix_task(task))
        return WorkResult(task.task_id, sha256(result), result)

    def verify(self, ctx: WorkContext, task_id: bytes, model_hash: bytes, proof: bytes, work_hash: bytes) -> None:
        n = ctx.matrix_n
        _check_size(n, ctx.freivalds_k)
        if not isinstance(proof, bytes) or len(proof) != 4 * n * n:
            raise InvalidProof(f"a {n}x{n} result is {4 * n * n} bytes")
        # the result must be the one the header commits to
        if sha256(proof) != model_hash:
            raise InvalidProof("model_hash is not the hash of the result")
        if compute_matrix_task_id(ctx.prev_hash, ctx.height, n) != task_id:
            raise InvalidProof("task_id is not the task assigned at this height")
        task = self.tasks.get(ctx.prev_hash, ctx.height, n)
        # drawn from the work hash, which commits to the result: fixed after it
        rows = np.ascontiguousarray(compute_freivalds_vectors(work_hash, n, ctx.freivalds_k).T)
        c = np.frombuffer(proof, dtype="<i4").reshape(n, n)
        right = compute_row_product(rows, c, check_entries=True)  # InvalidProof on an impossible entry
        if not np.array_equal((rows @ task.a64) @ task.b64, right):
            raise InvalidProof("Freivalds check failed: the result is not A @ B")


MATRIX_PRODUCT = MatrixProductKind()
register_proof_kind(MATRIX_PRODUCT)
