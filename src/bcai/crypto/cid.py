"""CIDv1 content ids, byte-compatible with IPFS.

A CIDv1 is `<version=1><codec><multihash>` with varint prefixes; bcai uses the sha2-256
multihash (code 0x12, 32-byte digest) and two codecs: `raw` (0x55) for opaque bytes
(datasets, model files, chunks) and `dag-cbor` (0x71) for canonical-CBOR objects. The
string form is multibase base32 lower-case with the `b` prefix, as IPFS prints it
(`bafkrei...` for raw, `bafyrei...` for dag-cbor).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from bcai.errors import InvalidCid

CODEC_RAW = 0x55
CODEC_DAG_CBOR = 0x71
_CODECS = {CODEC_RAW: "raw", CODEC_DAG_CBOR: "dag-cbor"}
_SHA2_256 = 0x12
_DIGEST_SIZE = 32
# Every CID we make or accept: version 1, one-byte codec, sha2-256 multihash of 32 bytes.
_PREFIXES = {codec: bytes([0x01, codec, _SHA2_256, _DIGEST_SIZE]) for codec in _CODECS}


@dataclass(frozen=True, slots=True)
class Cid:
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.codec not in _CODECS:
            raise InvalidCid(f"unsupported codec 0x{self.codec:x}")
        if len(self.digest) != _DIGEST_SIZE:
            raise InvalidCid("sha2-256 digest must be 32 bytes")

    @classmethod
    def of(cls, content: bytes, codec: int = CODEC_RAW) -> Cid:
        """The CID of `content` (raw bytes by default)."""
        return cls(codec, hashlib.sha256(content).digest())

    @classmethod
    def from_bytes(cls, data: bytes) -> Cid:
        """Parse the binary form (as carried in blocks and messages)."""
        if len(data) != 4 + _DIGEST_SIZE:
            raise InvalidCid(f"binary CID must be {4 + _DIGEST_SIZE} bytes, got {len(data)}")
        for codec, prefix in _PREFIXES.items():
            if data[:4] == prefix:
                return cls(codec, bytes(data[4:]))
        raise InvalidCid("not a CIDv1 with a raw/dag-cbor codec and a sha2-256 multihash")

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse the string form (`b` + base32 lower-case, no padding)."""
        if not isinstance(text, str) or not text.startswith("b") or text != text.lower():
            raise InvalidCid(f"expected a base32 CIDv1 string starting with 'b': {text!r}")
        body = text[1:].upper()
        try:
            data = base64.b32decode(body + "=" * (-len(body) % 8))
        except (ValueError, TypeError):
            raise InvalidCid(f"not base32: {text!r}") from None
        cid = cls.from_bytes(data)
        if str(cid) != text:  # reject non-canonical base32 (stray trailing bits)
            raise InvalidCid(f"non-canonical CID string: {text!r}")
        return cid

    def to_bytes(self) -> bytes:
        return _PREFIXES[self.codec] + self.digest

    @property
    def codec_name(self) -> str:
        return _CODECS[self.codec]

    def matches(self, content: bytes) -> bool:
        """True when `content` hashes to this CID's digest."""
        return hashlib.sha256(content).digest() == self.digest

    def check(self, content: bytes) -> None:
        """Raise `InvalidCid` unless `content` is what this CID names."""
        if not self.matches(content):
            raise InvalidCid(f"content does not match {self}")

    def __str__(self) -> str:
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")

    def __repr__(self) -> str:
        return f"Cid({self})"
