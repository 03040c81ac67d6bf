"""SHA-256, the one hash function of bcai ids, roots and content ids."""

from __future__ import annotations

import hashlib
from typing import NewType

Hash = NewType("Hash", bytes)  # always 32 bytes
HASH_SIZE = 32


def sha256(data: bytes) -> Hash:
    return Hash(hashlib.sha256(data).digest())
