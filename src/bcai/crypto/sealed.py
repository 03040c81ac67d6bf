"""Sealed boxes: encrypt a secret (a dataset key, say) to a node's ed25519 identity.

libsodium's `crypto_box_seal`: an ephemeral X25519 key agrees a key with the recipient's
X25519 key (converted from its ed25519 key), XSalsa20-Poly1305 encrypts; only the holder of
the recipient's private key can open it, and the sender stays anonymous.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.public
import nacl.signing

from bcai.crypto.keys import PrivateKey, PublicKey
from bcai.errors import DecryptionFailed, InvalidKey


def seal(recipient: PublicKey, plaintext: bytes) -> bytes:
    try:
        curve = nacl.signing.VerifyKey(recipient.raw).to_curve25519_public_key()
    except (nacl.exceptions.RuntimeError, ValueError):
        raise InvalidKey("recipient key cannot be converted to X25519") from None
    return nacl.public.SealedBox(curve).encrypt(plaintext)


def open_sealed(recipient: PrivateKey, ciphertext: bytes) -> bytes:
    curve = nacl.signing.SigningKey(recipient.seed).to_curve25519_private_key()
    try:
        return nacl.public.SealedBox(curve).decrypt(ciphertext)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptionFailed("sealed box does not open with this key") from None
