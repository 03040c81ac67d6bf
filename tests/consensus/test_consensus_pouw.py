"""Proof of useful work: the matrix task, Freivalds' check, the header hash, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from bcai.crypto import sha256
from bcai.errors import InvalidProof, UnknownProofKind
from bcai.verify import (
    MATRIX_PRODUCT,
    MatrixProductKind,
    MatrixTaskCache,
    ProofKind,
    WorkContext,
    compute_freivalds_vectors,
    compute_matrix_task,
    compute_matrix_task_id,
    compute_nonce,
    compute_row_product,
    compute_work_hash,
    decode_matrix_result,
    encode_matrix_result,
    get_proof_kind,
    get_proof_kind_names,
    is_below_target,
    is_correct_product,
    register_proof_kind,
    solve_matrix_task,
    verify_work,
)

PREV = sha256(b"parent block")
CTX = WorkContext(PREV, 7, 24, 4)


def _solved() -> tuple[bytes, bytes, bytes]:
    work = MATRIX_PRODUCT.solve(CTX)
    return work.task_id, work.model_hash, work.proof


def test_task_is_derived_from_parent_and_height() -> None:
    a = compute_matrix_task(PREV, 7, 24)
    assert np.array_equal(a.a, compute_matrix_task(PREV, 7, 24).a)  # deterministic
    assert not np.array_equal(a.a, compute_matrix_task(PREV, 8, 24).a)
    assert not np.array_equal(a.a, compute_matrix_task(sha256(b"other"), 7, 24).a)


def test_solution_is_the_exact_product() -> None:
    task = compute_matrix_task(PREV, 7, 24)
    exact = task.a.astype(np.int64) @ task.b.astype(np.int64)
    assert np.array_equal(solve_matrix_task(task), exact)
    assert np.array_equal(decode_matrix_result(encode_matrix_result(exact), 24), exact)


def test_correct_work_verifies() -> None:
    task_id, model_hash, proof = _solved()
    tx_root = sha256(b"txs")
    nonce = compute_nonce(PREV, tx_root, model_hash, 2**62)
    verify_work(CTX, "matrix", task_id, model_hash, nonce, tx_root, 2**62, proof)


def test_invalid_result_one_entry_off_is_caught_for_many_vector_draws() -> None:
    task = compute_matrix_task(PREV, 7, 24)
    c = solve_matrix_task(task)
    c[5, 9] += 1
    for i in range(200):  # with 16-bit entries a single draw misses with probability 2^-16
        r = compute_freivalds_vectors(sha256(bytes([i % 256, i // 256])), 24, 1)
        assert not is_correct_product(task.a, task.b, c, r)


def test_invalid_proof_wrong_result() -> None:
    task_id, _, proof = _solved()
    bad = bytearray(proof)
    bad[40] ^= 1
    bad_hash = sha256(bytes(bad))
    nonce = compute_nonce(PREV, sha256(b""), bad_hash, 2**62)
    with pytest.raises(InvalidProof, match="Freivalds"):
        verify_work(CTX, "matrix", task_id, bad_hash, nonce, sha256(b""), 2**62, bytes(bad))


def test_invalid_proof_model_hash_not_bound_to_result() -> None:
    task_id, model_hash, proof = _solved()
    other_hash = sha256(b"something else")
    nonce = compute_nonce(PREV, sha256(b""), other_hash, 2**62)
    with pytest.raises(InvalidProof, match="model_hash"):
        verify_work(CTX, "matrix", task_id, other_hash, nonce, sha256(b""), 2**62, proof)


@pytest.mark.parametrize("height", [6, 8])
def test_invalid_proof_stale_or_future_task(height: int) -> None:
    other = WorkContext(PREV, height, 24, 4)
    work = MATRIX_PRODUCT.solve(other)  # honest work, for another height
    nonce = compute_nonce(PREV, sha256(b""), work.model_hash, 2**62)
    with pytest.raises(InvalidProof, match="stale or future"):
        verify_work(CTX, "matrix", work.task_id, work.model_hash, nonce, sha256(b""), 2**62, work.proof)


def test_invalid_proof_nonce_not_bound_to_payload() -> None:
    task_id, model_hash, proof = _solved()
    target = 2**60  # 1 in 16 hashes qualifies
    nonce = compute_nonce(PREV, sha256(b"payload A"), model_hash, target)
    other_root = next(
        sha256(bytes([i])) for i in range(256)
        if not is_below_target(compute_work_hash(PREV, sha256(bytes([i])), model_hash, nonce), target)
    )
    with pytest.raises(InvalidProof, match="target"):
        verify_work(CTX, "matrix", task_id, model_hash, nonce, other_root, target, proof)


@pytest.mark.parametrize("size", [0, 4 * 24 * 24 - 4, 4 * 24 * 24 + 4])
def test_invalid_result_size(size: int) -> None:
    with pytest.raises(InvalidProof):
        decode_matrix_result(b"\x00" * size, 24)


def test_invalid_result_impossible_entry() -> None:
    c = np.zeros((24, 24), dtype=np.int64)
    c[0, 0] = 24 * 128 * 128 + 1
    with pytest.raises(InvalidProof, match="entry"):
        decode_matrix_result(encode_matrix_result(c), 24)


def test_invalid_sizes() -> None:
    with pytest.raises(ValueError):
        compute_matrix_task(PREV, 1, 1)
    with pytest.raises(ValueError):
        compute_matrix_task(PREV, 1, 4096)
    with pytest.raises(ValueError):
        compute_nonce(PREV, PREV, PREV, 0)


def test_vectors_depend_on_the_work_hash() -> None:
    a = compute_freivalds_vectors(sha256(b"1"), 32, 4)
    b = compute_freivalds_vectors(sha256(b"2"), 32, 4)
    assert a.shape == (32, 4) and not np.array_equal(a, b)
    assert a.min() >= 0 and a.max() < 2**16


def test_registry_knows_matrix_and_rejects_unknown_kinds() -> None:
    assert "matrix" in get_proof_kind_names()
    assert get_proof_kind("matrix") is MATRIX_PRODUCT
    with pytest.raises(UnknownProofKind):
        get_proof_kind("training-step")


def test_registry_refuses_a_second_kind_under_a_taken_name() -> None:
    class Impostor(ProofKind):
        name = "matrix"

        def compute_task_id(self, ctx: WorkContext) -> bytes:
            return b""

        def solve(self, ctx: WorkContext):  # noqa: ANN201
            raise NotImplementedError

        def verify(self, ctx: WorkContext, task_id: bytes, model_hash: bytes, proof: bytes, work_hash: bytes) -> None:
            raise InvalidProof("never")

    with pytest.raises(ValueError):
        register_proof_kind(Impostor())


# --- the per-height task cache -----------------------------------------------------------


def test_task_cache_never_serves_another_parent_height_or_size() -> None:
    cache = MatrixTaskCache()
    first = cache.get(PREV, 7, 24)
    assert cache.get(PREV, 7, 24) is first and (cache.hits, cache.misses) == (1, 1)
    for key in [(sha256(b"other parent"), 7, 24), (PREV, 8, 24), (PREV, 7, 32)]:
        task = cache.get(*key)
        assert task is not first and task.task_id == compute_matrix_task_id(*key)
        fresh = compute_matrix_task(*key)
        assert np.array_equal(task.a, fresh.a) and np.array_equal(task.b, fresh.b)
        assert np.array_equal(task.a64, fresh.a) and np.array_equal(task.b64, fresh.b)
    assert cache.misses == 4


def test_task_cache_is_bounded_and_its_arrays_read_only() -> None:
    cache = MatrixTaskCache(max_entries=2)
    for height in range(1, 6):
        cache.get(PREV, height, 16)
    assert len(cache) == 2
    cache.get(PREV, 5, 16)  # the newest stayed
    assert cache.hits == 1
    tiny = MatrixTaskCache(max_bytes=1)  # over budget: only the task in use is kept
    tiny.get(PREV, 1, 16)
    tiny.get(PREV, 2, 16)
    assert len(tiny) == 1
    task = cache.get(PREV, 5, 16)
    for array in (task.a, task.b, task.a64, task.b64):
        with pytest.raises(ValueError):
            array[0, 0] = 1


def test_invalid_task_cache_settings() -> None:
    with pytest.raises(ValueError):
        MatrixTaskCache(max_entries=0)
    with pytest.raises(ValueError):
        MatrixTaskCache(max_bytes=-1)


def test_prover_and_verifier_share_the_cached_task_and_bad_results_are_still_rejected() -> None:
    kind = MatrixProductKind(MatrixTaskCache())
    work = kind.solve(CTX)
    tx_root = sha256(b"txs")
    nonce = compute_nonce(PREV, tx_root, work.model_hash, 2**62)
    work_hash = compute_work_hash(PREV, tx_root, work.model_hash, nonce)
    for _ in range(3):  # a proposal seen in several rounds
        kind.verify(CTX, work.task_id, work.model_hash, work.proof, work_hash)
    assert (kind.tasks.misses, kind.tasks.hits) == (1, 3)
    # with the task warm: a wrong entry, an impossible entry, another height's task, a bad size
    wrong = bytearray(work.proof)
    wrong[4 * 30] ^= 1
    with pytest.raises(InvalidProof, match="Freivalds"):
        kind.verify(CTX, work.task_id, sha256(bytes(wrong)), bytes(wrong), work_hash)
    c = solve_matrix_task(compute_matrix_task(PREV, 7, 24))
    c[23, 23] = 24 * 128 * 128 + 1
    impossible = encode_matrix_result(c)
    with pytest.raises(InvalidProof, match="entry"):
        kind.verify(CTX, work.task_id, sha256(impossible), impossible, work_hash)
    other = kind.solve(WorkContext(PREV, 8, 24, 4))
    with pytest.raises(InvalidProof, match="task_id"):
        kind.verify(CTX, other.task_id, other.model_hash, other.proof, work_hash)
    with pytest.raises(InvalidProof, match="Freivalds"):  # the right id, a result for another height
        kind.verify(CTX, work.task_id, other.model_hash, other.proof, work_hash)
    with pytest.raises(InvalidProof, match="bytes"):
        kind.verify(CTX, work.task_id, work.model_hash, work.proof[:-4], work_hash)


def test_row_product_in_blocks_matches_the_plain_product() -> None:
    n = 150  # not a multiple of the block
    task = compute_matrix_task(PREV, 3, n)
    c = solve_matrix_task(task).astype(np.int32)
    rows = np.ascontiguousarray(compute_freivalds_vectors(sha256(b"w"), n, 3).T)
    assert np.array_equal(compute_row_product(rows, c, check_entries=True), rows @ c.astype(np.float64))
    assert is_correct_product(task.a64, task.b64, c, rows.T) and is_correct_product(task.a, task.b, c, rows.T)
    c[149, 0] = -(n * 128 * 128) - 1
    with pytest.raises(InvalidProof, match="entry"):
        compute_row_product(rows, c, check_entries=True)
