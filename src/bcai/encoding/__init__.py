"""Canonical encoding for everything bcai hashes or signs.

- `cbor.py`: deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding):
  `encode(value) -> bytes`, `decode(bytes) -> value` (rejects every non-canonical form).
"""

from bcai.encoding.cbor import MAX_INT, MIN_INT, decode, encode

__all__ = ["MAX_INT", "MIN_INT", "decode", "encode"]
