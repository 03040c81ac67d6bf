"""The artifacts a node keeps for API clients (`POST /artifacts`), within a quota.

`UploadLedger` records each object stored through the API (CID, size, when it was last
uploaded) in a small SQLite file next to the content store, so the quota holds across
restarts. Past `[api] upload_quota_bytes` a new upload first evicts the oldest uploads that
are past their grace (`upload_evict_after_s` since last uploaded) and not pinned (what a
job still needs, `find_pinned_artifacts`); when that cannot free enough, nothing is evicted
and the upload is refused with `StorageFull`. Objects the node holds for other reasons
(its own models) are not the ledger's and are never evicted by it.

Uploading a held object again restarts its grace, but not for free: it costs the client's
allowance the object's size times the part of the grace that had run (`renewal_cost`), so
keeping bytes from eviction costs what uploading as many new bytes would, and a client
re-sending its uploads every grace period pays for them every time.

Objects the node fetches from peers for `GET /artifacts` are stored within the same quota
(`admit_fetched`): recorded as already past their grace, so they are a cache, evicted
before any upload still in its grace (and never while a job pins them); when no room can
be made they are not stored at all (the client still gets the bytes). Before, every fetch
was kept outside any bound, so clients asking for large peer content could fill the disk.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from bcai.crypto import CODEC_DAG_CBOR, Cid
from bcai.encoding import decode
from bcai.errors import BcaiError, InvalidCid, StorageFull
from bcai.ledger.state import TERMINAL_JOB_STATES, Job
from bcai.store import ContentStore

MAX_PIN_OBJECTS = 100_000  # dag-cbor documents read while following a job's references


class UploadLedger:
    def __init__(self, path: str | Path, quota_bytes: int, evict_after_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.quota_bytes = quota_bytes
        self.evict_after_s = evict_after_s
        self.clock = clock
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS uploads (cid TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                        "at REAL NOT NULL)")
        self.db.execute("CREATE INDEX IF NOT EXISTS uploads_at ON uploads (at)")
        self.total = int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM uploads").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def forget_missing(self, has: Callable[[Cid], bool]) -> None:
        """Drop the records of objects no longer in the store (removed as corrupt, by hand)."""
        for cid, in self.db.execute("SELECT cid FROM uploads").fetchall():
            if not has(Cid.parse(cid)):
                self.forget(cid)

    def renewal_cost(self, cid: str) -> int:
        """What uploading `cid` again costs its client's allowance: 0 for an object that is
        not an upload, else its size times the part of its grace that has run since it was
        last uploaded (a retry right after an upload costs next to nothing, a re-upload once
        the grace is over its whole size: the protection it buys)."""
        row = self.db.execute("SELECT size, at FROM uploads WHERE cid = ?", (cid,)).fetchone()
        if row is None:
            return 0
        size, at = int(row[0]), float(row[1])
        if self.evict_after_s <= 0:
            return size
        return math.ceil(size * min(1.0, max(0.0, (self.clock() - at) / self.evict_after_s)))

    def renew(self, cid: str) -> None:
        """An upload of an object already stored (charged by `renewal_cost`): its grace
        starts again."""
        self.db.execute("UPDATE uploads SET at = ? WHERE cid = ?", (self.clock(), cid))

    def admit_fetched(self, cid: str, size: int, pinned: Callable[[], set[str]],
                      evict: Callable[[str], None]) -> list[str]:
        """`admit` for an object fetched from a peer: a cache entry, past its grace at once
        (the first to go, after older ones), whose upload later costs a whole renewal."""
        return self.admit(cid, size, pinned, evict, at=self.clock() - self.evict_after_s)

    def admit(self, cid: str, size: int, pinned: Callable[[], set[str]], evict: Callable[[str], None],
              at: float | None = None) -> list[str]:
        """Record an upload of `size` bytes (last uploaded `at`, default now), first evicting
        the oldest unpinned uploads past their grace as far as the quota needs; return what
        was evicted. `StorageFull` (and nothing evicted) when that cannot make room."""
        need = self.total + size - self.quota_bytes
        evicted: list[tuple[str, int]] = []
        if need > 0:
            freed = 0
            pins = pinned() if size <= self.quota_bytes else set()
            cutoff = self.clock() - self.evict_after_s
            rows = self.db.execute("SELECT cid, size FROM uploads WHERE at <= ? ORDER BY at, cid", (cutoff,))
            for old, old_size in rows if size <= self.quota_bytes else ():
                if old not in pins:
                    evicted.append((old, old_size))
                    freed += old_size
                    if freed >= need:
                        break
            if freed < need:
                raise StorageFull(f"{size} more bytes would take this node's API uploads past its quota of "
                                  f"{self.quota_bytes}; what it holds is pinned by jobs or uploaded within "
                                  f"{self.evict_after_s:g} s")
            for old, old_size in evicted:
                evict(old)
                self.forget(old)
        stamp = self.clock() if at is None else at
        if self.db.execute("INSERT OR IGNORE INTO uploads VALUES (?, ?, ?)", (cid, size, stamp)).rowcount:
            self.total += size
        return [old for old, _ in evicted]

    def forget(self, cid: str) -> None:
        row = self.db.execute("DELETE FROM uploads WHERE cid = ? RETURNING size", (cid,)).fetchone()
        if row is not None:
            self.total -= int(row[0])

    def __contains__(self, cid: str) -> bool:
        return self.db.execute("SELECT 1 FROM uploads WHERE cid = ?", (cid,)).fetchone() is not None


def find_job_references(job: Job) -> Iterator[Cid]:
    """The CIDs a job still needs: all it names while it runs (its spec, results, verdicts,
    checkpoint); once completed only its results (the models its client fetches); none
    once it failed, expired or was cancelled."""
    if job.status in TERMINAL_JOB_STATES:
        if job.status == "completed":
            yield from (Cid.from_bytes(cid) for cid, _ in job.results.values())
        return
    yield job.spec_cid
    yield from (Cid.from_bytes(cid) for cid, _ in job.results.values())
    yield from (Cid.from_bytes(cid) for cid, _, _ in job.attestations.values())
    yield from (Cid.from_bytes(cid) for cid in job.verdicts)
    if job.checkpoint is not None:
        yield Cid.from_bytes(job.checkpoint[1])


def find_pinned_artifacts(roots: Iterable[Cid], content: ContentStore) -> set[str]:
    """`roots` and every CID reachable from them through the dag-cbor documents this node
    holds (a job spec names its datasets, a manifest its chunks), as strings."""
    pinned: set[str] = set()
    todo = list(roots)
    read = 0
    while todo:
        cid = todo.pop()
        if str(cid) in pinned:
            continue
        pinned.add(str(cid))
        if cid.codec != CODEC_DAG_CBOR or read >= MAX_PIN_OBJECTS:
            continue
        read += 1
        try:
            todo.extend(_find_cids(decode(content.get(cid))))
        except BcaiError:
            continue  # not here, corrupt, or not canonical CBOR: it names nothing we can follow
    return pinned


def _find_cids(value: Any) -> Iterator[Cid]:
    """Every CID in a decoded CBOR value: a string in CID form or the binary form in bytes."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, (str, bytes)):
            try:
                yield Cid.parse(item) if isinstance(item, str) else Cid.from_bytes(item)
            except InvalidCid:
                continue
