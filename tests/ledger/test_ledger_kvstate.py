"""The key-value state: incremental root against a from-scratch reference, rollback, proofs."""

import hashlib

from hypothesis import given, settings, strategies as st

from bcai.ledger import KVState, verify_proof
from bcai.ledger.kvstate import ARITY, BUCKET_BITS, compute_bucket, compute_bucket_hash


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """The obvious, slow root: hash all 2**16 buckets, then every level of the 16-ary tree."""
    buckets: dict[int, list[tuple[bytes, bytes]]] = {}
    for k, v in items.items():
        buckets.setdefault(compute_bucket(k), []).append((k, v))
    level = [compute_bucket_hash(buckets.get(i, [])) for i in range(1 << BUCKET_BITS)]
    while len(level) > 1:
        level = [hashlib.sha256(b"\x01" + b"".join(level[i: i + ARITY])).digest()
                 for i in range(0, len(level), ARITY)]
    return level[0]


def test_empty_root_matches_reference():
    assert KVState().root() == reference_root({})


keys = st.binary(min_size=1, max_size=8).map(lambda b: b"t/" + b)
ops = st.lists(st.tuples(keys, st.one_of(st.none(), st.binary(max_size=8))), max_size=40)


@settings(max_examples=25, deadline=None)
@given(ops, ops)
def test_incremental_root_equals_reference(first, second):
    kv, model = KVState(), {}
    for batch in (first, second):
        for k, v in batch:
            if v is None:
                kv.delete(k)
                model.pop(k, None)
            else:
                kv.set(k, v)
                model[k] = v
        assert kv.root() == reference_root(model)
    assert dict(kv.items()) == model
    assert kv.keys_in_table(b"t/") == sorted(model)


@settings(max_examples=25, deadline=None)
@given(ops, ops)
def test_rollback_restores_entries_and_root(first, second):
    kv = KVState()
    for k, v in first:
        kv.set(k, v if v is not None else b"")
    root, items = kv.root(), list(kv.items())
    mark = kv.checkpoint()
    for k, v in second:
        kv.delete(k) if v is None else kv.set(k, v)
    kv.rollback(mark)
    assert kv.root() == root and list(kv.items()) == items
    assert kv.keys_in_table(b"t/") == [k for k, _ in items]


def test_nested_checkpoint_commit_then_outer_rollback():
    kv = KVState()
    kv.set(b"a/1", b"x")
    root = kv.root()
    outer = kv.checkpoint()
    inner = kv.checkpoint()
    kv.set(b"a/1", b"y")
    kv.set(b"a/2", b"z")
    kv.commit(inner)
    kv.rollback(outer)
    assert kv.root() == root and list(kv.items()) == [(b"a/1", b"x")]


def test_proofs_of_presence_and_absence():
    kv = KVState()
    for i in range(300):
        kv.set(b"k/" + i.to_bytes(2, "big"), bytes([i % 256]))
    root = kv.root()
    proof = kv.compute_proof(b"k/\x00\x05")
    assert proof.value == b"\x05" and verify_proof(root, proof)
    absent = kv.compute_proof(b"k/missing")
    assert absent.value is None and verify_proof(root, absent)
    forged = proof.__class__(proof.key, b"\x06", proof.bucket_entries, proof.siblings)
    assert not verify_proof(root, forged)
    kv.set(b"k/\x00\x05", b"changed")
    assert not verify_proof(kv.root(), proof)


def test_copy_is_independent():
    kv = KVState()
    kv.set(b"a/1", b"x")
    other = kv.copy()
    other.set(b"a/1", b"y")
    assert kv.get(b"a/1") == b"x" and other.root() != kv.root()


def test_root_cost_follows_touched_keys_not_state_size(monkeypatch):
    import bcai.ledger.kvstate as kvstate

    kv = KVState()
    for i in range(20_000):
        kv.set(b"k/" + i.to_bytes(4, "big"), b"v")
    kv.root()
    calls = []
    real = kvstate.compute_bucket_hash
    monkeypatch.setattr(kvstate, "compute_bucket_hash", lambda entries: calls.append(len(entries)) or real(entries))
    for i in (5, 77, 12_345):
        kv.set(b"k/" + i.to_bytes(4, "big"), b"w")
    kv.root()
    assert len(calls) == 3  # one bucket per touched key, each holding ~20000/65536 entries
    assert sum(calls) <= 15
