"""Writing the files commands produce (genesis, programs, models, arrays): whole or not at all.

The bytes go to a temporary file next to the target, are fsynced, and only then take the
target's name, so a full disk, an error or a Ctrl-C half-way leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from bcai.errors import FileAccessError


def write_file(path: Path, data: bytes, overwrite: bool = True) -> None:
    """Write `data` to `path` atomically; without `overwrite`, an existing `path` is a
    `FileAccessError` (checked at the rename itself, not before)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise FileAccessError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path exists, where a rename would replace it
    except FileExistsError:
        raise FileAccessError(f"{path} already exists; not overwriting it") from None
    except OSError as exc:
        raise FileAccessError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_file(path, buffer.getvalue())
