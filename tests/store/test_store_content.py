"""The file content store: whole objects or nothing, a full disk is a clear error, damage is found."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from bcai.crypto import Cid
from bcai.errors import ContentNotFound, ContentStoreError, ContentStoreFull, CorruptContent
from bcai.store.content import FileContentStore


def failing_fdopen(code: int) -> Any:
    real = os.fdopen

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        f = real(fd, *args, **kwargs)

        def write(data: bytes) -> int:
            raise OSError(code, os.strerror(code))

        f.write = write
        return f
    return fdopen


@pytest.mark.parametrize("code, error", [(errno.ENOSPC, ContentStoreFull), (errno.EDQUOT, ContentStoreFull),
                                         (errno.EIO, ContentStoreError)])
def test_a_failed_write_is_a_clear_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             code: int, error: type) -> None:
    store = FileContentStore(tmp_path)
    kept = store.put(b"already here")
    monkeypatch.setattr(os, "fdopen", failing_fdopen(code))
    with pytest.raises(error) as info:
        store.put(b"x" * 1000)
    assert info.type is error and str(tmp_path) in str(info.value)
    monkeypatch.undo()
    assert list(store.cids()) == [kept] and not list(tmp_path.rglob(".tmp-*"))
    assert store.get(kept) == b"already here"
    cid = store.put(b"x" * 1000)  # the disk has room again
    assert store.get(cid) == b"x" * 1000


def test_damaged_bytes_on_disk_are_found_and_removed(tmp_path: Path) -> None:
    store = FileContentStore(tmp_path)
    cid = store.put(b"model weights")
    path = next(p for p in tmp_path.rglob(str(cid)))
    path.write_bytes(b"model weightz")
    with pytest.raises(CorruptContent):
        store.get(cid)
    assert not store.has(cid)
    with pytest.raises(ContentNotFound):
        store.get(cid)
    assert Cid.of(b"model weights") == cid
