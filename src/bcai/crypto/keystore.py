"""Named ed25519 keys on disk, one JSON file each under `<home>/keys/`.

Files are created with mode 0600 inside a 0700 directory (never through a umask race:
the file is opened with O_EXCL and the mode at creation), written whole to a temp file
and then linked to their name, so a key file is complete or absent. A key file that others can
read is refused, as ssh refuses a private key with open permissions.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from bcai.crypto.keys import PrivateKey
from bcai.encoding.documents import load_json, read_utf8
from bcai.errors import InvalidKey, KeyStoreError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _fsync_directory(directory: Path) -> None:
    """Make a new name in `directory` durable (the file's own fsync does not cover it)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class KeyStore:
    def __init__(self, home: Path) -> None:
        self.directory = Path(home) / "keys"

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise KeyStoreError(f"bad key name {name!r}: use letters, digits, '_', '.', '-'")
        return self.directory / f"{name}.json"

    def create(self, name: str, key: PrivateKey | None = None) -> PrivateKey:
        key = key or PrivateKey.generate()
        path = self._path(name)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        record = {
            "name": name,
            "type": "ed25519",
            "address": str(key.address),
            "public_key": key.public_key.hex(),
            "seed": key.seed.hex(),
        }
        if path.exists():
            raise KeyStoreError(f"key {name!r} already exists at {path}")
        # Written whole to a temp file, then linked to its name (link never replaces an
        # existing file): a Ctrl-C or a full disk mid-write leaves no truncated key under
        # the name, which would refuse every later `create` of it.
        tmp = self.directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            raise KeyStoreError(f"key {name!r} already exists at {path}") from None
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_directory(self.directory)
        return key

    def load(self, name: str) -> PrivateKey:
        path = self._path(name)
        if not path.exists():
            raise KeyStoreError(f"no key named {name!r} in {self.directory}")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
        try:
            record = load_json(read_utf8(path))
            key = PrivateKey(bytes.fromhex(record["seed"]))
        except (ValueError, KeyError, TypeError):
            raise InvalidKey(f"key file {path} is corrupt") from None
        if record.get("public_key") != key.public_key.hex():
            raise InvalidKey(f"key file {path}: public key does not match the seed")
        return key

    def names(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))
