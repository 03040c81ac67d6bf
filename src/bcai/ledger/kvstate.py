"""The key-value state every ledger module reads and writes, with an incremental state root.

Every piece of ledger state is one entry `key -> value`, both canonical bytes (keys are
`table/` + id bytes, values are canonical CBOR). The root commits to all entries:

    bucket(key)   = first 2 bytes of SHA-256(key)          (2**16 buckets)
    bucket_hash   = SHA-256(0x02 || for each (key, value) in key order:
                            len(key) u32 || key || len(value) u32 || value)
                    (SHA-256 of the empty string for an empty bucket)
    root          = perfect binary Merkle tree over the 2**16 bucket hashes,
                    inner node = SHA-256(0x01 || left || right)

Why buckets: a write marks one bucket dirty; `root()` rehashes only dirty buckets (each holds
about n / 65536 entries) and the 16 tree nodes above each, so the cost of a block's root grows
with the keys it touched, not with the size of the state. The tree over empty buckets is
precomputed per level, so an empty state costs nothing to create. A bucket plus its 16
siblings is an inclusion (or exclusion) proof for any key (`compute_proof` / `verify_proof`).

Atomicity: `checkpoint()` starts a journal of old values; `rollback(cp)` restores them and
`commit(cp)` drops the journal. Applying a tx or a block inside a checkpoint makes a rejected
one leave the state byte-for-byte unchanged at the cost of the keys it wrote, never a copy.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Iterator

BUCKET_BITS = 16
_EMPTY_BUCKET = hashlib.sha256(b"").digest()
_MISSING = object()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# _EMPTY[d] is the hash of an all-empty subtree whose leaves are d levels below it.
_EMPTY = [_EMPTY_BUCKET]
for _ in range(BUCKET_BITS):
    _EMPTY.append(_node(_EMPTY[-1], _EMPTY[-1]))


def compute_bucket(key: bytes) -> int:
    digest = hashlib.sha256(key).digest()
    return (digest[0] << 8 | digest[1]) >> (16 - BUCKET_BITS)


def compute_bucket_hash(entries: list[tuple[bytes, bytes]]) -> bytes:
    """Hash of one bucket's entries (given in any order)."""
    if not entries:
        return _EMPTY_BUCKET
    h = hashlib.sha256(b"\x02")
    for key, value in sorted(entries):
        h.update(struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value)
    return h.digest()


@dataclass(frozen=True, slots=True)
class StateProof:
    """Proof that `key` has `value` (or is absent, value None) under a state root."""

    key: bytes
    value: bytes | None
    bucket_entries: tuple[tuple[bytes, bytes], ...]
    siblings: tuple[bytes, ...]  # from the bucket level up to just below the root


def verify_proof(root: bytes, proof: StateProof) -> bool:
    entries = dict(proof.bucket_entries)
    if entries.get(proof.key) != proof.value:
        return False
    index = compute_bucket(proof.key)
    if any(compute_bucket(k) != index for k in entries):
        return False
    if len(proof.siblings) != BUCKET_BITS:
        return False
    acc = compute_bucket_hash(list(proof.bucket_entries))
    for sibling in proof.siblings:
        acc = _node(acc, sibling) if index % 2 == 0 else _node(sibling, acc)
        index //= 2
    return acc == root


class KVState:
    """Canonical key-value entries with a bucketed, incrementally updated Merkle root."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._bucket_keys: dict[int, set[bytes]] = {}
        self._tables: dict[bytes, set[bytes]] = {}  # "table/" prefix -> keys, for scans
        self._dirty: set[int] = set()
        # _levels[d][i]: hash of node i at depth d above the buckets (d=0: buckets).
        self._levels: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]
        self._journal: list[tuple[bytes, object]] | None = None
        self._marks: list[int] = []  # journal length at each open checkpoint
        self._changed: set[bytes] = set()  # keys written since the last `take_changes`

    # -- reads -------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def __contains__(self, key: bytes) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def keys_in_table(self, table: bytes) -> list[bytes]:
        """All keys that start with `table` (which ends with b"/"), sorted."""
        return sorted(self._tables.get(table, ()))

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """All entries in key order."""
        for key in sorted(self._data):
            yield key, self._data[key]

    # -- writes ------------------------------------------------------------------------

    def set(self, key: bytes, value: bytes) -> None:
        old = self._data.get(key, _MISSING)
        if old == value:
            return
        if self._journal is not None:
            self._journal.append((key, old))
        if old is _MISSING:
            self._index(key)
        self._data[key] = value
        self._dirty.add(compute_bucket(key))
        self._changed.add(key)

    def delete(self, key: bytes) -> None:
        old = self._data.get(key, _MISSING)
        if old is _MISSING:
            return
        if self._journal is not None:
            self._journal.append((key, old))
        del self._data[key]
        self._unindex(key)
        self._dirty.add(compute_bucket(key))
        self._changed.add(key)

    def take_changes(self) -> dict[bytes, bytes | None]:
        """Entries written since the last call (None: deleted), for incremental persistence."""
        changes = {key: self._data.get(key) for key in self._changed}
        self._changed = set()
        return changes

    def _index(self, key: bytes) -> None:
        self._bucket_keys.setdefault(compute_bucket(key), set()).add(key)
        slash = key.find(b"/")
        if slash >= 0:
            self._tables.setdefault(key[: slash + 1], set()).add(key)

    def _unindex(self, key: bytes) -> None:
        bucket = compute_bucket(key)
        keys = self._bucket_keys[bucket]
        keys.discard(key)
        if not keys:
            del self._bucket_keys[bucket]
        slash = key.find(b"/")
        if slash >= 0:
            table = self._tables[key[: slash + 1]]
            table.discard(key)

    # -- atomicity ---------------------------------------------------------------------

    def checkpoint(self) -> int:
        """Open a (possibly nested) checkpoint; returns its token for `rollback` / `commit`."""
        if self._journal is None:
            self._journal = []
        self._marks.append(len(self._journal))
        return len(self._marks)

    def rollback(self, token: int) -> None:
        """Undo every write since checkpoint `token` (and close it and those inside it)."""
        assert self._journal is not None and 0 < token <= len(self._marks), "no such checkpoint"
        journal, position = self._journal, self._marks[token - 1]
        while len(journal) > position:
            key, old = journal.pop()
            if old is _MISSING:
                if key in self._data:
                    del self._data[key]
                    self._unindex(key)
            else:
                if key not in self._data:
                    self._index(key)
                self._data[key] = old  # type: ignore[assignment]
            self._dirty.add(compute_bucket(key))
            self._changed.add(key)
        self._close(token)

    def commit(self, token: int) -> None:
        """Keep the writes since checkpoint `token`; an enclosing checkpoint can still undo them."""
        assert 0 < token <= len(self._marks), "no such checkpoint"
        self._close(token)

    def _close(self, token: int) -> None:
        del self._marks[token - 1:]
        if not self._marks:
            self._journal = None

    # -- root and proofs ---------------------------------------------------------------

    def _node_hash(self, depth: int, index: int) -> bytes:
        return self._levels[depth].get(index, _EMPTY[depth])

    def root(self) -> bytes:
        """The state root; rehashes only buckets written since the last call."""
        if self._dirty:
            dirty = self._dirty
            self._dirty = set()
            buckets = self._levels[0]
            for index in dirty:
                entries = [(k, self._data[k]) for k in self._bucket_keys.get(index, ())]
                h = compute_bucket_hash(entries)
                if h == _EMPTY_BUCKET:
                    buckets.pop(index, None)
                else:
                    buckets[index] = h
            for depth in range(1, BUCKET_BITS + 1):
                parents = {i >> 1 for i in dirty}
                level = self._levels[depth]
                for p in parents:
                    h = _node(self._node_hash(depth - 1, 2 * p), self._node_hash(depth - 1, 2 * p + 1))
                    if h == _EMPTY[depth]:
                        level.pop(p, None)
                    else:
                        level[p] = h
                dirty = parents
        return self._node_hash(BUCKET_BITS, 0)

    def compute_proof(self, key: bytes) -> StateProof:
        self.root()
        index = compute_bucket(key)
        entries = tuple(sorted((k, self._data[k]) for k in self._bucket_keys.get(index, ())))
        siblings = []
        i = index
        for depth in range(BUCKET_BITS):
            siblings.append(self._node_hash(depth, i ^ 1))
            i >>= 1
        return StateProof(key, self._data.get(key), entries, tuple(siblings))

    def copy(self) -> KVState:
        other = KVState()
        for key, value in self._data.items():
            other._data[key] = value
            other._index(key)
        self.root()
        other._levels = [dict(level) for level in self._levels]
        other._changed = set(self._changed)
        return other
