"""Kademlia routing: XOR distance, k-buckets and the iterative lookup, as pure code.

The shell (`discovery.py`) does the networking; these classes only decide. Node ids are
SHA-256 of public keys (`NodeId`), so the key space is 256 bits and bucket i holds the
nodes whose id shares exactly i leading bits with ours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bcai.p2p.records import NodeId, SignedNodeRecord
from bcai.p2p.transport import compute_host_key

ID_BITS = 256


def compute_distance(a: NodeId, b: NodeId) -> int:
    return int.from_bytes(a.raw, "big") ^ int.from_bytes(b.raw, "big")


def compute_bucket_index(own: NodeId, other: NodeId) -> int:
    """Number of leading bits `other` shares with `own` (0..255); ValueError for own id."""
    distance = compute_distance(own, other)
    if distance == 0:
        raise ValueError("a node is not in its own routing table")
    return ID_BITS - distance.bit_length()


class RoutingTable:
    """256 k-buckets of signed records, least recently seen first within a bucket.

    A full bucket keeps its old entries (long-lived nodes are the most likely to stay,
    and an attacker cannot flush a bucket with fresh ids); the newcomer waits in a small
    replacement list and takes the place of an entry that `process_failure` removes.
    """

    def __init__(self, own: NodeId, k: int = 20) -> None:
        self.own = own
        self.k = k
        self.buckets: list[list[SignedNodeRecord]] = [[] for _ in range(ID_BITS)]
        self.replacements: list[list[SignedNodeRecord]] = [[] for _ in range(ID_BITS)]

    def process_seen(self, signed: SignedNodeRecord) -> bool:
        """Insert or refresh a (verified) record; return True if it is in the table now."""
        node = signed.node_id
        if node == self.own:
            return False
        index = compute_bucket_index(self.own, node)
        bucket = self.buckets[index]
        for i, existing in enumerate(bucket):
            if existing.node_id == node:
                if signed.record.seq < existing.record.seq:
                    signed = existing  # never roll a record back
                del bucket[i]
                bucket.append(signed)
                return True
        if len(bucket) < self.k:
            bucket.append(signed)
            return True
        spares = [r for r in self.replacements[index] if r.node_id != node]
        self.replacements[index] = (spares + [signed])[-self.k :]
        return False

    def process_failure(self, node: NodeId) -> None:
        """Drop an unreachable node; promote the freshest replacement into its place."""
        if node == self.own:
            return
        index = compute_bucket_index(self.own, node)
        bucket = self.buckets[index]
        kept = [r for r in bucket if r.node_id != node]
        if len(kept) < len(bucket) and self.replacements[index]:
            kept.append(self.replacements[index].pop())
        self.buckets[index] = kept

    def get(self, node: NodeId) -> SignedNodeRecord | None:
        if node == self.own:
            return None
        for record in self.buckets[compute_bucket_index(self.own, node)]:
            if record.node_id == node:
                return record
        return None

    def get_closest(self, target: NodeId, count: int) -> list[SignedNodeRecord]:
        every = [r for bucket in self.buckets for r in bucket]
        every.sort(key=lambda r: compute_distance(r.node_id, target))
        return every[:count]

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets)

    def __iter__(self) -> Iterable[SignedNodeRecord]:  # type: ignore[override]
        return iter([r for bucket in self.buckets for r in bucket])


@dataclass
class LookupState:
    """An iterative FIND_NODE lookup toward `target`.

    Ask the `alpha` closest not-yet-asked candidates at a time; merge what they return;
    finish when the `k` closest known candidates have all answered or failed.

    At most `max_per_host` candidates at one host (however its address is spelt): a
    record is signed by its own key, but nothing proves the address in it is the signer's,
    and keys cost nothing, so one hostile answer could otherwise make us dial a victim
    once per id it made up.
    """

    target: NodeId
    own: NodeId
    k: int = 20
    alpha: int = 3
    max_per_host: int = 2
    candidates: dict[NodeId, SignedNodeRecord] = field(default_factory=dict)
    asked: set[NodeId] = field(default_factory=set)
    answered: set[NodeId] = field(default_factory=set)
    failed: set[NodeId] = field(default_factory=set)
    per_host: Counter[str] = field(default_factory=Counter)

    def process_records(self, records: Iterable[SignedNodeRecord]) -> None:
        for signed in records:
            node = signed.node_id
            if node == self.own or node in self.failed:
                continue
            known = self.candidates.get(node)
            host = compute_host_key(signed.record.address)
            if known is None:
                # a newcomer at a host that has its share already is not taken (first come:
                # the seeds from our own table come first)
                if self.per_host[host] >= self.max_per_host:
                    continue
                self.per_host[host] += 1
            elif signed.record.seq > known.record.seq:
                # a newer record of a known candidate may not move it to a full host either
                old_host = compute_host_key(known.record.address)
                if host != old_host:
                    if self.per_host[host] >= self.max_per_host:
                        continue
                    self.per_host[old_host] -= 1
                    self.per_host[host] += 1
            else:
                continue
            self.candidates[node] = signed

    def get_next_batch(self, in_flight: int = 0) -> list[SignedNodeRecord]:
        """Up to `alpha - in_flight` candidates to ask next (closest first)."""
        room = self.alpha - in_flight
        if room <= 0 or self.is_done():
            return []
        batch = [r for r in self._closest_alive() if r.node_id not in self.asked][:room]
        self.asked.update(r.node_id for r in batch)
        return batch

    def process_answer(self, node: NodeId, records: Iterable[SignedNodeRecord]) -> None:
        self.answered.add(node)
        self.process_records(records)

    def process_deferred(self, node: NodeId) -> None:
        """`node` could not be asked yet (no connection slot free): ask it again later."""
        self.asked.discard(node)

    def process_failure(self, node: NodeId) -> None:
        self.failed.add(node)
        self.candidates.pop(node, None)

    def is_done(self) -> bool:
        return all(r.node_id in self.answered for r in self._closest_alive())

    def get_result(self) -> list[SignedNodeRecord]:
        return self._closest_alive()

    def _closest_alive(self) -> list[SignedNodeRecord]:
        alive = [r for n, r in self.candidates.items() if n not in self.failed]
        alive.sort(key=lambda r: compute_distance(r.node_id, self.target))
        return alive[: self.k]
