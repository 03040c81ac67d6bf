"""One node process per home: an exclusive `flock` on HOME/data/node.lock while it runs.

Two processes on one home would both sign with the validator's key (a double sign that
slashes its stake) and both write the chain store and the WAL. The lock is the kernel's:
it is released when the process exits however it exits (`kill -9` included), so there is
no stale lock to clean up; the file holds the owner's pid for the error message.
"""

from __future__ import annotations

import fcntl
import os
import weakref
from pathlib import Path

from bcai.errors import NodeHomeLocked

LOCK_FILE = "node.lock"


class HomeLock:
    """Holds the lock from construction until `release()` (or until garbage collection)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise NodeHomeLocked(f"another bcai node (pid {owner}) is running with the home {self.path.parent.parent}; "
                                 f"stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._release = weakref.finalize(self, os.close, fd)  # closing the fd drops the flock

    def release(self) -> None:
        self._release()
