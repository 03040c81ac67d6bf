"""The node's verified-signature cache: each tx signature is checked once per node, and the
cache never lets an invalid tx through (other bytes are verified again; every other rule
still runs on each application)."""

from __future__ import annotations

import pytest

import bcai.ledger.process as ledger_process
from bcai.consensus import CommitBlock, Engine, Start, Genesis as ConsensusGenesis
from bcai.crypto import PrivateKey
from bcai.encoding import encode
from bcai.errors import BadNonce, BadTransactionSignature, InvalidBlock
from bcai.ledger import LedgerBlock, SignedTx, Transfer, compute_genesis_state, decode_tx, encode_tx, process_block, process_tx
from bcai.node.application import NodeApplication
from bcai.node.home import compute_local_params, make_genesis
from bcai.node.mempool import Mempool
from bcai.node.sigcache import VerifiedSignatures
from bcai.store import MemoryChainStore

CHAIN = "bcai-sigcache"
V1 = PrivateKey.from_label("sc-v1")
ALICE, BOB = PrivateKey.from_label("sc-alice"), PrivateKey.from_label("sc-bob")


def make_app() -> NodeApplication:
    genesis = make_genesis(CHAIN, [V1.public_key], [(ALICE.address, 10_000)])
    store = MemoryChainStore()
    store.commit_genesis(compute_genesis_state(genesis))
    return NodeApplication(store.load_state(), store, Mempool(), compute_local_params(CHAIN),
                           ConsensusGenesis(0, b"\x00" * 32))


def transfer(nonce: int, amount: int = 10) -> bytes:
    return encode_tx(ALICE, nonce, 1, CHAIN, Transfer(BOB.address, amount))


def decode(raw: bytes) -> SignedTx:
    return decode_tx(raw, 1 << 20)


def forge(valid: bytes, amount: int) -> bytes:
    """Another transfer (same sender and nonce) carrying `valid`'s signature."""
    other = decode(transfer(decode(valid).nonce, amount))
    return encode([other.payload, decode(valid).signature])


def test_cache_is_bounded_oldest_first() -> None:
    cache = VerifiedSignatures(capacity=3)
    for i in range(5):
        cache.add(bytes([i]) * 32)
    assert len(cache) == 3
    assert bytes([0]) * 32 not in cache and bytes([1]) * 32 not in cache
    assert all(bytes([i]) * 32 in cache for i in (2, 3, 4))
    cache.add(bytes([4]) * 32)  # already known: nothing forgotten
    assert bytes([2]) * 32 in cache


def test_invalid_cache_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        VerifiedSignatures(capacity=0)


def test_invalid_forged_tx_is_rejected_although_the_valid_one_is_cached() -> None:
    app = make_app()
    valid = transfer(0)
    app.check_tx(valid)
    assert decode(valid).hash in app.verified
    forged = forge(valid, 999)
    fresh = app.state.copy()
    with pytest.raises(BadTransactionSignature):
        process_tx(fresh, forged, app.verified)
    assert decode(forged).hash not in app.verified
    # a peer's block carrying the forged bytes in place of the cached tx is still checked
    with pytest.raises(InvalidBlock):
        process_block(app.state.copy(), LedgerBlock(1, V1.address, (forged,)), app.verified)


def test_invalid_replay_after_commit_is_rejected_although_cached() -> None:
    app = make_app()
    raw = transfer(0)
    app.check_tx(raw)
    engine = Engine(app.params, ConsensusGenesis(0, b"\x00" * 32), app, V1, app.tip)
    commits = [a for a in engine.handle(Start(1000)) if isinstance(a, CommitBlock)]
    assert commits and commits[0].block.txs == (raw,)
    assert decode(raw).hash in app.verified
    with pytest.raises(BadNonce):
        app.check_tx(raw)
    with pytest.raises(InvalidBlock):
        process_block(app.state.copy(), LedgerBlock(2, V1.address, (raw,)), app.verified)
    assert len(app.pool) == 0


def test_each_signature_is_verified_once_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = ledger_process._verify_signature

    def counting(tx, chain_id):  # type: ignore[no-untyped-def]
        calls.append(tx.raw)
        real(tx, chain_id)

    monkeypatch.setattr(ledger_process, "_verify_signature", counting)
    app = make_app()
    txs = [transfer(n) for n in range(5)]
    for raw in txs:
        app.check_tx(raw)
    engine = Engine(app.params, ConsensusGenesis(0, b"\x00" * 32), app, V1, app.tip)
    engine.handle(Start(1000))  # proposal dry run, check_payload, apply, mempool re-check
    assert app.state.get_account(ALICE.address)[1] == 5
    assert sorted(calls) == sorted(txs)


def test_without_a_cache_the_ledger_verifies_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = ledger_process._verify_signature
    monkeypatch.setattr(ledger_process, "_verify_signature", lambda tx, c: (calls.append(tx.raw), real(tx, c)))
    state = make_app().state
    raw = transfer(0)
    process_tx(state.copy(), raw)
    process_tx(state.copy(), raw)
    assert calls == [raw, raw]
