"""The content store: immutable blobs by CID, verified on every read.

Two implementations of one small interface, checked by one shared test class:

- `FileContentStore`: one file per object under `root/<2 hex>/<cid>`; written to a temp
  file and renamed into place (a crash never leaves a partial object under its name);
  `fsync=True` also makes it durable before `put` returns.
- `MemoryContentStore`: a dict, for tests and simulations.

A blob that no longer hashes to its CID (disk corruption, tampering) raises
`CorruptContent` and is removed, so it will be fetched again.
"""

from __future__ import annotations

import errno
import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from bcai.crypto import CODEC_RAW, SHA2_256, Cid
from bcai.errors import ContentNotFound, ContentStoreError, ContentStoreFull, CorruptContent, InvalidCid


class ContentStore(ABC):
    def put(self, data: bytes, codec: int = CODEC_RAW, multihash: int = SHA2_256) -> Cid:
        """Store `data`; return its CID (storing the same bytes twice is a no-op)."""
        cid = Cid.of(data, codec, multihash)
        if not self.has(cid):
            self._write(cid, bytes(data))
        return cid

    def put_verified(self, cid: Cid, data: bytes) -> None:
        """Store bytes someone claims are `cid`; raise `InvalidCid` if they are not."""
        cid.check(data)
        if not self.has(cid):
            self._write(cid, bytes(data))

    def get(self, cid: Cid) -> bytes:
        """The bytes of `cid`; `ContentNotFound` or `CorruptContent` (then removed)."""
        data = self._read(cid)
        if data is None:
            raise ContentNotFound(f"{cid} is not in the store")
        if not cid.matches(data):
            self.delete(cid)
            raise CorruptContent(f"stored bytes of {cid} do not match it; removed")
        return data

    @abstractmethod
    def has(self, cid: Cid) -> bool: ...

    @abstractmethod
    def delete(self, cid: Cid) -> None:
        """Remove `cid` if present."""

    @abstractmethod
    def cids(self) -> Iterator[Cid]: ...

    @abstractmethod
    def _write(self, cid: Cid, data: bytes) -> None: ...

    @abstractmethod
    def _read(self, cid: Cid) -> bytes | None: ...


class MemoryContentStore(ContentStore):
    def __init__(self) -> None:
        self.blobs: dict[Cid, bytes] = {}

    def has(self, cid: Cid) -> bool:
        return cid in self.blobs

    def delete(self, cid: Cid) -> None:
        self.blobs.pop(cid, None)

    def cids(self) -> Iterator[Cid]:
        return iter(list(self.blobs))

    def _write(self, cid: Cid, data: bytes) -> None:
        self.blobs[cid] = data

    def _read(self, cid: Cid) -> bytes | None:
        return self.blobs.get(cid)


class FileContentStore(ContentStore):
    def __init__(self, root: str | os.PathLike[str], fsync: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._dirs: set[Path] = set()
        self._counter = itertools.count()

    def _path(self, cid: Cid) -> Path:
        name = str(cid)
        return self.root / name[-2:] / name

    def has(self, cid: Cid) -> bool:
        return self._path(cid).is_file()

    def delete(self, cid: Cid) -> None:
        self._path(cid).unlink(missing_ok=True)

    def cids(self) -> Iterator[Cid]:
        for path in sorted(self.root.glob("*/b*")):
            try:
                yield Cid.parse(path.name)
            except InvalidCid:
                continue  # not ours (a stray file); leave it alone

    def _write(self, cid: Cid, data: bytes) -> None:
        path = self._path(cid)
        if path.parent not in self._dirs:
            path.parent.mkdir(exist_ok=True)
            self._dirs.add(path.parent)
        # A unique temp name in the same directory, then an atomic rename onto the CID.
        tmp = path.parent / f".tmp-{os.getpid()}-{next(self._counter)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:  # nothing half-written stays: the CID's file appears whole or not at all
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ContentStoreFull(f"content store {self.root} is full: {exc.strerror}") from None
            raise ContentStoreError(f"content store {self.root} cannot write {cid}: {exc.strerror}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _read(self, cid: Cid) -> bytes | None:
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            return None
