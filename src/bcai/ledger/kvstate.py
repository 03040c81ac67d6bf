"""The key-value state every ledger module reads and writes, with an incremental state root.

Every piece of ledger state is one entry `key -> value`, both canonical bytes (keys are
`table/` + id bytes, values are canonical CBOR). The root commits to all entries:

    bucket(key)   = first 2 bytes of SHA-256(key)          (2**16 buckets)
    bucket_hash   = SHA-256(0x02 || for each (key, value) in key order:
                            len(key) u32 || key || len(value) u32 || value)
                    (SHA-256 of the empty string for an empty bucket)
    root          = perfect 16-ary Merkle tree over the 2**16 bucket hashes (4 levels),
                    inner node = SHA-256(0x01 || child_0 || ... || child_15)

Why buckets: a write marks its key dirty; `root()` rehashes only the buckets holding dirty
keys (each bucket holds about n / 65536 entries) and the 4 tree nodes above each, so the
cost of a block's root grows with the keys it touched, not with the size of the state.
Why 16-ary: a block of 1000 transfers dirties ~2000 buckets; a binary tree rehashes
~12,000 inner nodes above them, the 16-ary tree ~2,300 (with it the root costs ~6 us per
transfer, about 5% of a transfer's whole cost; benchmarks/ledger_throughput.py). A bucket plus its 4 x 15 sibling hashes is an
inclusion (or exclusion) proof for any key (`compute_proof` / `verify_proof`).

Atomicity: `checkpoint()` opens a (nestable) journal of old values; `rollback(token)`
restores them and `commit(token)` keeps the writes. Applying a tx or a block inside a checkpoint makes a rejected
one leave the state byte-for-byte unchanged at the cost of the keys it wrote, never a copy.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Iterator

BUCKET_BITS = 16
ARITY = 16
LEVELS = 4  # ARITY ** LEVELS == 2 ** BUCKET_BITS
_EMPTY_BUCKET = hashlib.sha256(b"").digest()
_MISSING = object()


def _node(children: list[bytes]) -> bytes:
    return hashlib.sha256(b"\x01" + b"".join(children)).digest()


# _EMPTY[d] is the hash of an all-empty subtree whose leaves are d levels below it.
_EMPTY = [_EMPTY_BUCKET]
for _ in range(LEVELS):
    _EMPTY.append(_node([_EMPTY[-1]] * ARITY))


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
    siblings: tuple[tuple[bytes, ...], ...]  # per level, bottom up: the 15 other children


def verify_proof(root: bytes, proof: StateProof) -> bool:
    entries = dict(proof.bucket_entries)
    if entries.get(proof.key) != proof.value:
        return False
    index = compute_bucket(proof.key)
    if any(compute_bucket(k) != index for k in entries):
        return False
    if len(proof.siblings) != LEVELS or any(len(s) != ARITY - 1 for s in proof.siblings):
        return False
    acc = compute_bucket_hash(list(proof.bucket_entries))
    for siblings in proof.siblings:
        position = index % ARITY
        acc = _node([*siblings[:position], acc, *siblings[position:]])
        index //= ARITY
    return acc == root


class KVState:
    """Canonical key-value entries with a bucketed, incrementally updated Merkle root."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._bucket_keys: dict[int, set[bytes]] = {}  # maintained lazily, in `root()`
        self._tables: dict[bytes, set[bytes]] = {}  # "table/" prefix -> keys, for scans
        # Keys written since the last root: their buckets are found (one SHA-256 each) only
        # when the root is computed, so a key written 1000 times in a block costs one hash.
        self._dirty_keys: set[bytes] = set()
        # _levels[d][i]: hash of node i at height d above the buckets (d=0: the buckets).
        self._levels: list[list[bytes]] = [[_EMPTY[d]] * (ARITY ** (LEVELS - d)) for d in range(LEVELS + 1)]
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
        data = self._data
        old = data.get(key, _MISSING)
        if old == value:
            return
        if self._journal is not None:
            self._journal.append((key, old))
        if old is _MISSING:
            self._add_to_table(key)
        data[key] = value
        self._dirty_keys.add(key)
        self._changed.add(key)

    def delete(self, key: bytes) -> None:
        old = self._data.get(key, _MISSING)
        if old is _MISSING:
            return
        if self._journal is not None:
            self._journal.append((key, old))
        del self._data[key]
        self._remove_from_table(key)
        self._dirty_keys.add(key)
        self._changed.add(key)

    def take_changes(self) -> dict[bytes, bytes | None]:
        """Entries written since the last call (None: deleted), for incremental persistence."""
        changes = {key: self._data.get(key) for key in self._changed}
        self._changed = set()
        return changes

    def _add_to_table(self, key: bytes) -> None:
        slash = key.find(b"/")
        if slash >= 0:
            self._tables.setdefault(key[: slash + 1], set()).add(key)

    def _remove_from_table(self, key: bytes) -> None:
        slash = key.find(b"/")
        if slash >= 0:
            self._tables[key[: slash + 1]].discard(key)

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
                    self._remove_from_table(key)
            else:
                if key not in self._data:
                    self._add_to_table(key)
                self._data[key] = old  # type: ignore[assignment]
            self._dirty_keys.add(key)
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

    def root(self) -> bytes:
        """The state root; rehashes only buckets written since the last call."""
        if self._dirty_keys:
            dirty: set[int] = set()
            data, bucket_keys = self._data, self._bucket_keys
            for key in self._dirty_keys:
                index = compute_bucket(key)
                dirty.add(index)
                if key in data:
                    bucket_keys.setdefault(index, set()).add(key)
                else:
                    members = bucket_keys.get(index)
                    if members is not None:
                        members.discard(key)
                        if not members:
                            del bucket_keys[index]
            self._dirty_keys = set()
            buckets = self._levels[0]
            for index in dirty:
                buckets[index] = compute_bucket_hash([(k, data[k]) for k in bucket_keys.get(index, ())])
            for height in range(1, LEVELS + 1):
                below, level = self._levels[height - 1], self._levels[height]
                dirty = {i // ARITY for i in dirty}
                for p in dirty:
                    level[p] = _node(below[p * ARITY: (p + 1) * ARITY])
        return self._levels[LEVELS][0]

    def compute_proof(self, key: bytes) -> StateProof:
        self.root()
        index = compute_bucket(key)
        entries = tuple(sorted((k, self._data[k]) for k in self._bucket_keys.get(index, ())))
        siblings = []
        for height in range(LEVELS):
            start, position = index - index % ARITY, index % ARITY
            children = self._levels[height][start: start + ARITY]
            siblings.append(tuple(children[:position] + children[position + 1:]))
            index //= ARITY
        return StateProof(key, self._data.get(key), entries, tuple(siblings))

    def copy(self) -> KVState:
        self.root()
        other = KVState()
        other._data = dict(self._data)
        other._bucket_keys = {index: set(keys) for index, keys in self._bucket_keys.items()}
        other._tables = {table: set(keys) for table, keys in self._tables.items()}
        other._levels = [list(level) for level in self._levels]
        other._changed = set(self._changed)
        return other
