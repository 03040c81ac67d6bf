"""The mempool: pending transactions, ordered for proposals, with hard limits. A pure core.

Validity against the ledger (signature, balance, fee) is checked by the caller before
`add`; the mempool keeps what a proposer needs:

- per sender, a queue ordered by nonce; only a run of consecutive nonces starting at the
  account's next nonce is ready for a block;
- across senders, the ready heads are served highest fee-per-byte first (FIFO on ties), so
  a block is filled in fee order without ever breaking a sender's nonce order;
- limits on count, bytes and per-sender depth; when full, a new tx evicts the cheapest
  sender tail only if it pays a higher fee rate, else `MempoolFull`;
- replace-by-fee: the same sender and nonce with at least a 10% higher fee replaces;
- a tx that leaves without being committed (no longer valid after a block, evicted for
  higher fees, replaced, its nonce used by another) is remembered with the reason, the
  last `MAX_DROPPED` of them, so a client waiting for it learns why at once
  (`GET /txs/{hash}` status `dropped`) instead of waiting out its timeout.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from bcai.crypto import Address
from bcai.errors import FeeTooLowToReplace, MempoolFull, NonceTooFarAhead, TxAlreadyKnown

REPLACE_BUMP_PERCENT = 10
MAX_DROPPED = 10_000  # reasons remembered for txs that left without being committed


class PendingTx(Protocol):
    @property
    def hash(self) -> bytes: ...
    @property
    def sender_address(self) -> Address: ...
    @property
    def nonce(self) -> int: ...
    @property
    def fee(self) -> int: ...
    @property
    def raw(self) -> bytes: ...


@dataclass(order=True)
class _Entry:
    # Sort key: fee rate descending, then arrival order.
    neg_rate: float
    seq: int
    tx: PendingTx = field(compare=False)


def _rate(tx: PendingTx) -> float:
    # Fee per byte; only used for ordering within this node, never in consensus.
    return tx.fee / max(1, len(tx.raw))


class Mempool:
    def __init__(self, max_txs: int = 20_000, max_bytes: int = 64 << 20, max_per_sender: int = 1_000) -> None:
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self._by_sender: dict[Address, dict[int, _Entry]] = {}
        self._by_hash: dict[bytes, _Entry] = {}
        self._bytes = 0
        self._seq = itertools.count()
        self._dropped: OrderedDict[bytes, tuple[str, str]] = OrderedDict()  # hash -> (code, message)

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def add(self, tx: PendingTx, next_nonce: int) -> None:
        """Hold `tx`; `next_nonce` is the sender's next nonce on chain (tx.nonce >= it)."""
        tx_hash = tx.hash
        if tx_hash in self._by_hash:
            raise TxAlreadyKnown(f"tx {tx_hash.hex()[:16]} is already pending")
        sender = tx.sender_address
        if tx.nonce >= next_nonce + self.max_per_sender:
            raise NonceTooFarAhead(f"nonce {tx.nonce} is more than {self.max_per_sender} ahead of {next_nonce}")
        queue = self._by_sender.get(sender, {})
        replaced = queue.get(tx.nonce)
        if replaced is not None and tx.fee * 100 < replaced.tx.fee * (100 + REPLACE_BUMP_PERCENT):
            raise FeeTooLowToReplace(f"replacing nonce {tx.nonce} needs a fee of at least "
                                     f"{replaced.tx.fee * (100 + REPLACE_BUMP_PERCENT) // 100}")
        freed = len(replaced.tx.raw) if replaced else 0
        need_count = 0 if replaced else 1
        while (len(self) + need_count > self.max_txs
               or self._bytes - freed + len(tx.raw) > self.max_bytes):
            victim = self._cheapest_tail(exclude=sender)
            if victim is None or _rate(victim.tx) >= _rate(tx):
                raise MempoolFull(f"mempool holds {len(self)} txs / {self._bytes} bytes")
            self._remove(victim.tx)
            self._note_dropped(victim.tx.hash, MempoolFull.code, "evicted from a full mempool by txs paying a higher fee")
        if replaced is not None:
            self._remove(replaced.tx)
            self._note_dropped(replaced.tx.hash, "tx_replaced", f"replaced by {tx_hash.hex()} (same nonce, higher fee)")
        self._dropped.pop(tx_hash, None)
        entry = _Entry(-_rate(tx), next(self._seq), tx)
        self._by_sender.setdefault(sender, {})[tx.nonce] = entry
        self._by_hash[tx_hash] = entry
        self._bytes += len(tx.raw)

    def reap(self, next_nonce: Callable[[Address], int], max_bytes: int, max_txs: int) -> list[PendingTx]:
        """Txs for a block: ready runs per sender, best fee rate first, within the limits."""
        heap: list[_Entry] = []
        for sender, queue in self._by_sender.items():
            head = queue.get(next_nonce(sender))
            if head is not None:
                heap.append(head)
        heapq.heapify(heap)
        chosen: list[PendingTx] = []
        used = 0
        while heap and len(chosen) < max_txs:
            entry = heapq.heappop(heap)
            size = len(entry.tx.raw)
            if used + size > max_bytes:
                continue  # this sender's run stops here; others may still fit
            chosen.append(entry.tx)
            used += size
            following = self._by_sender[entry.tx.sender_address].get(entry.tx.nonce + 1)
            if following is not None:
                heapq.heappush(heap, following)
        return chosen

    def update(self, committed: Iterable[bytes], next_nonce: Callable[[Address], int]) -> None:
        """After a block: drop committed txs and every tx whose nonce is now used."""
        for tx_hash in committed:
            entry = self._by_hash.get(tx_hash)
            if entry is not None:
                self._remove(entry.tx)
        for sender in list(self._by_sender):
            floor = next_nonce(sender)
            for nonce in [n for n in self._by_sender[sender] if n < floor]:
                stale = self._by_sender[sender][nonce].tx
                self._remove(stale)
                self._note_dropped(stale.hash, "nonce_used", f"another tx of this sender with nonce {nonce} was committed")

    def remove(self, tx_hash: bytes, code: str = "tx_invalid", message: str = "no longer valid") -> None:
        """Drop one tx (no longer valid: `code` and `message` say why); unknown hashes are ignored."""
        entry = self._by_hash.get(tx_hash)
        if entry is not None:
            self._remove(entry.tx)
            self._note_dropped(tx_hash, code, message)

    def dropped(self, tx_hash: bytes) -> tuple[str, str] | None:
        """Why `tx_hash` left the pool without being committed (code, message), if it did lately."""
        return self._dropped.get(tx_hash)

    def _note_dropped(self, tx_hash: bytes, code: str, message: str) -> None:
        self._dropped[tx_hash] = (code, message)
        self._dropped.move_to_end(tx_hash)
        while len(self._dropped) > MAX_DROPPED:
            self._dropped.popitem(last=False)

    def get(self, tx_hash: bytes) -> PendingTx | None:
        entry = self._by_hash.get(tx_hash)
        return None if entry is None else entry.tx

    def pending(self) -> list[PendingTx]:
        return [entry.tx for entry in self._by_hash.values()]

    def _cheapest_tail(self, exclude: Address) -> _Entry | None:
        tails = [queue[max(queue)] for sender, queue in self._by_sender.items() if sender != exclude and queue]
        return max(tails, default=None)  # max of (neg_rate, seq): lowest rate, newest

    def _remove(self, tx: PendingTx) -> None:
        entry = self._by_hash.pop(tx.hash)
        sender = tx.sender_address
        queue = self._by_sender[sender]
        del queue[tx.nonce]
        if not queue:
            del self._by_sender[sender]
        self._bytes -= len(entry.tx.raw)
