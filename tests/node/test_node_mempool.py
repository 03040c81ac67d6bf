"""Mempool core: nonce order per sender, fee order across senders, limits, replace-by-fee."""

import hashlib
from dataclasses import dataclass

import pytest

from bcai.crypto import Address
from bcai.errors import FeeTooLowToReplace, MempoolFull, NonceTooFarAhead, TxAlreadyKnown
from bcai.node.mempool import Mempool


@dataclass(frozen=True)
class Tx:
    sender_address: Address
    nonce: int
    fee: int
    raw: bytes

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.raw).digest()


def make(sender: int, nonce: int, fee: int, size: int = 100) -> Tx:
    addr = Address(bytes([sender]) * 20)
    body = f"{sender}:{nonce}:{fee}:".encode()
    return Tx(addr, nonce, fee, body + b"x" * (size - len(body)))


def nonces_from(chain: dict[int, int]):
    return lambda address: chain.get(address.raw[0], 0)


def test_reap_keeps_nonce_order_and_prefers_fee():
    pool = Mempool()
    for tx in [make(1, 1, 50), make(1, 0, 10), make(2, 0, 30), make(3, 1, 99)]:
        pool.add(tx, next_nonce=0)
    reaped = pool.reap(nonces_from({}), max_bytes=10_000, max_txs=10)
    # sender 3 has no nonce 0, so nothing of it is ready; sender 1's nonce 0 must come before 1.
    assert [(t.sender_address.raw[0], t.nonce) for t in reaped] == [(2, 0), (1, 0), (1, 1)]


def test_reap_respects_limits():
    pool = Mempool()
    for n in range(5):
        pool.add(make(1, n, 10), next_nonce=0)
    assert len(pool.reap(nonces_from({}), max_bytes=250, max_txs=10)) == 2
    assert len(pool.reap(nonces_from({}), max_bytes=10_000, max_txs=3)) == 3


def test_update_drops_committed_and_stale():
    pool = Mempool()
    txs = [make(1, n, 10) for n in range(4)]
    for tx in txs:
        pool.add(tx, next_nonce=0)
    pool.update([txs[0].hash], nonces_from({1: 2}))
    assert [t.nonce for t in pool.reap(nonces_from({1: 2}), 10_000, 10)] == [2, 3]
    assert len(pool) == 2


def test_invalid_duplicate_rejected():
    pool = Mempool()
    tx = make(1, 0, 10)
    pool.add(tx, 0)
    with pytest.raises(TxAlreadyKnown):
        pool.add(tx, 0)


def test_invalid_nonce_too_far_ahead():
    pool = Mempool(max_per_sender=3)
    with pytest.raises(NonceTooFarAhead):
        pool.add(make(1, 3, 10), 0)


def test_replace_by_fee_needs_bump():
    pool = Mempool()
    pool.add(make(1, 0, 100), 0)
    with pytest.raises(FeeTooLowToReplace):
        pool.add(make(1, 0, 105), 0)
    pool.add(make(1, 0, 110), 0)
    assert len(pool) == 1
    assert pool.reap(nonces_from({}), 10_000, 10)[0].fee == 110


def test_full_pool_evicts_cheaper_or_refuses():
    pool = Mempool(max_txs=2)
    pool.add(make(1, 0, 10), 0)
    pool.add(make(2, 0, 20), 0)
    with pytest.raises(MempoolFull):
        pool.add(make(3, 0, 5), 0)
    pool.add(make(3, 0, 50), 0)
    assert sorted(t.fee for t in pool.pending()) == [20, 50]
    assert len(pool) == 2


def test_byte_limit_bounds_memory():
    pool = Mempool(max_bytes=1_000)
    for n in range(10):
        pool.add(make(n + 1, 0, 10 + n), 0)
    with pytest.raises(MempoolFull):
        pool.add(make(99, 0, 1), 0)
    assert pool.size_bytes <= 1_000


def test_txs_that_leave_uncommitted_are_remembered_with_the_reason():
    pool = Mempool(max_txs=2)
    pending, replacement = make(1, 1, 100), make(1, 1, 110)
    pool.add(pending, 0)
    pool.add(replacement, 0)
    assert pool.dropped(pending.hash)[0] == "tx_replaced" and pool.dropped(replacement.hash) is None
    cheap = make(2, 0, 1)
    pool.add(cheap, 0)
    pool.add(make(3, 0, 500), 0)  # full: the cheapest tail goes
    assert pool.dropped(cheap.hash)[0] == "mempool_full"
    stale = pool.get(make(3, 0, 500).hash)
    pool.update([], nonces_from({3: 1}))  # another tx of sender 3 with nonce 0 was committed
    assert pool.dropped(stale.hash)[0] == "nonce_used"
    pool.remove(replacement.hash, "insufficient_funds", "balance 3 < 110")
    assert pool.dropped(replacement.hash) == ("insufficient_funds", "balance 3 < 110")
    pool.add(replacement, 1)  # admitted again: no longer dropped
    assert pool.dropped(replacement.hash) is None


def test_dropped_reasons_are_bounded(monkeypatch):
    import bcai.node.mempool as mempool

    monkeypatch.setattr(mempool, "MAX_DROPPED", 3)
    pool = Mempool()
    txs = [make(1, 0, 10 + 10 * i) for i in range(6)]  # each replaces the last
    for tx in txs:
        pool.add(tx, 0)
    assert [pool.dropped(t.hash) is not None for t in txs] == [False, False, True, True, True, False]
