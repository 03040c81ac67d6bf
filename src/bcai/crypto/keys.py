"""ed25519 keys, addresses and domain-separated signatures (PyNaCl / libsodium).

Every signature covers three things besides the message: a fixed prefix, a *domain* that
names the kind of message (`"tx"`, `"vote"`, `"proposal"`, `"attest"`, ...) and the
*chain id*. A signature made for one kind of message or one chain therefore never
verifies as another. The signed bytes are

    b"bcai/" + domain + b"\\x00" + chain_id + b"\\x00" + message

where domain and chain id are non-empty printable ASCII without NUL, which makes the
split unambiguous.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from bcai.errors import InvalidKey, InvalidSignature

_LABEL = re.compile(r"[\x21-\x7e]{1,64}")
ADDRESS_SIZE = 20
ADDRESS_PREFIX = "bcai"


def signing_bytes(domain: str, chain_id: str, message: bytes) -> bytes:
    """The exact bytes an ed25519 signature covers for (domain, chain id, message)."""
    if not _LABEL.fullmatch(domain):
        raise ValueError(f"bad signature domain {domain!r}")
    if not _LABEL.fullmatch(chain_id):
        raise ValueError(f"bad chain id {chain_id!r}")
    return b"bcai/" + domain.encode() + b"\x00" + chain_id.encode() + b"\x00" + message


@dataclass(frozen=True, slots=True)
class Address:
    """20 bytes: the first 20 bytes of SHA-256 over the ed25519 public key.

    Printed as `bcai` + 40 lower-case hex digits.
    """

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != ADDRESS_SIZE:
            raise InvalidKey("an address is 20 bytes")

    @classmethod
    def parse(cls, text: str) -> Address:
        if not isinstance(text, str) or not text.startswith(ADDRESS_PREFIX):
            raise InvalidKey(f"an address starts with {ADDRESS_PREFIX!r}: {text!r}")
        body = text[len(ADDRESS_PREFIX):]
        if len(body) != 2 * ADDRESS_SIZE or body != body.lower():
            raise InvalidKey(f"an address is {ADDRESS_PREFIX} + 40 lower-case hex digits: {text!r}")
        try:
            return cls(bytes.fromhex(body))
        except ValueError:
            raise InvalidKey(f"not hex: {text!r}") from None

    def __str__(self) -> str:
        return ADDRESS_PREFIX + self.raw.hex()

    def __repr__(self) -> str:
        return f"Address({self})"


@dataclass(frozen=True, slots=True)
class PublicKey:
    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise InvalidKey("an ed25519 public key is 32 bytes")

    @property
    def address(self) -> Address:
        return Address(hashlib.sha256(self.raw).digest()[:ADDRESS_SIZE])

    def verify(self, domain: str, chain_id: str, message: bytes, signature: bytes) -> None:
        """Raise `InvalidSignature` unless `signature` signs (domain, chain id, message)."""
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise InvalidSignature("an ed25519 signature is 64 bytes")
        try:
            nacl.signing.VerifyKey(self.raw).verify(signing_bytes(domain, chain_id, message), signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            raise InvalidSignature(f"bad {domain} signature for key {self.raw.hex()[:16]}") from None

    def is_valid_signature(self, domain: str, chain_id: str, message: bytes, signature: bytes) -> bool:
        try:
            self.verify(domain, chain_id, message, signature)
        except InvalidSignature:
            return False
        return True

    def hex(self) -> str:
        return self.raw.hex()


class PrivateKey:
    """An ed25519 signing key, held as its 32-byte seed."""

    __slots__ = ("_signing", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise InvalidKey("an ed25519 seed is 32 bytes")
        self._signing = nacl.signing.SigningKey(seed)
        self.public_key = PublicKey(bytes(self._signing.verify_key))

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_label(cls, label: str) -> PrivateKey:
        """A deterministic key from a label: for tests, simulations and devnets only."""
        return cls(hashlib.sha256(b"bcai/test-key/" + label.encode()).digest())

    @property
    def seed(self) -> bytes:
        return bytes(self._signing)

    @property
    def address(self) -> Address:
        return self.public_key.address

    def sign(self, domain: str, chain_id: str, message: bytes) -> bytes:
        return self._signing.sign(signing_bytes(domain, chain_id, message)).signature

    def __repr__(self) -> str:  # never print the seed
        return f"PrivateKey(address={self.address})"
