"""Authenticated encryption bound to the node's ed25519 identity.

A station-to-station handshake, as CometBFT's SecretConnection, over any `ByteStream`:

1. both sides send `MAGIC` + an ephemeral X25519 public key (40 bytes in the clear);
2. both compute the X25519 shared secret and, with HKDF-SHA256 salted by the transcript
   (the two ephemeral keys, sorted), derive one ChaCha20-Poly1305 key per direction and a
   32-byte challenge;
3. each side sends, as its first encrypted frame, its ed25519 public key and a signature
   of the challenge (domain `"p2p-handshake"`, the network id as chain id).

The challenge depends on both ephemeral keys and the shared secret, so a signature cannot
be replayed into another session or relayed by a man in the middle; signing with the
network id keeps nodes of different networks apart. The dialer checks the proven key
against the node id it meant to reach.

Frames after the handshake: a 4-byte big-endian length of the ciphertext, then the
ciphertext (plaintext + 16-byte tag). The length is the AEAD's associated data and is
checked against the hard maximum *before* anything is read or allocated. Nonces are a
per-direction 64-bit counter that both sides keep implicitly: a replayed, dropped,
reordered or altered frame fails authentication and the connection is killed. Nothing
here is ever sent or accepted in plaintext after the 40-byte hello.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import struct

import nacl.bindings as sodium
import nacl.exceptions

from bcai.crypto import PrivateKey, PublicKey
from bcai.errors import (
    BcaiError,
    ConnectionClosed,
    FrameAuthenticationFailed,
    FrameTooLarge,
    HandshakeFailed,
    PeerIdentityMismatch,
)
from bcai.p2p.records import NodeId
from bcai.p2p.transport import ByteStream

MAGIC = b"BCAIP2P1"
HANDSHAKE_DOMAIN = "p2p-handshake"
MAX_FRAME = 16 * 1024 * 1024  # plaintext bytes per frame, hard limit
TAG_SIZE = 16
_HELLO_SIZE = len(MAGIC) + 32
_AUTH_SIZE = 32 + 64
_LENGTH = struct.Struct(">I")
_NONCE_LIMIT = 2**64 - 1


def compute_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def compute_session_keys(our_ephemeral: bytes, their_ephemeral: bytes, shared: bytes) -> tuple[bytes, bytes, bytes]:
    """(send key, receive key, challenge) for the side that owns `our_ephemeral`."""
    low, high = sorted((our_ephemeral, their_ephemeral))
    transcript = hashlib.sha256(b"bcai/p2p/sts/v1" + low + high).digest()
    material = compute_hkdf(shared, transcript, b"bcai/p2p/session-keys", 96)
    low_key, high_key, challenge = material[:32], material[32:64], material[64:]
    if our_ephemeral == low:
        return low_key, high_key, challenge
    return high_key, low_key, challenge


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


class SecureChannel:
    """An authenticated, encrypted frame channel over a byte stream.

    `send` must not be called concurrently (the peer's single writer task owns it); `recv`
    likewise belongs to one reader task.
    """

    def __init__(
        self,
        stream: ByteStream,
        send_key: bytes,
        recv_key: bytes,
        remote_key: PublicKey,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.stream = stream
        self._send_key = send_key
        self._recv_key = recv_key
        self._send_nonce = 0
        self._recv_nonce = 0
        self.remote_key = remote_key
        self.remote_id = NodeId.of(remote_key)
        self.max_frame = max_frame

    async def send(self, plaintext: bytes) -> None:
        if len(plaintext) > self.max_frame:
            raise FrameTooLarge(f"refusing to send a {len(plaintext)}-byte frame (max {self.max_frame})")
        await self.stream.write(seal_frame(self, plaintext))

    async def recv(self) -> bytes:
        header = await self.stream.read_exactly(4)
        (length,) = _LENGTH.unpack(header)
        if length > self.max_frame + TAG_SIZE or length < TAG_SIZE:
            raise FrameTooLarge(f"peer announced a {length}-byte frame (max {self.max_frame + TAG_SIZE})")
        ciphertext = await self.stream.read_exactly(length)
        return open_frame(self, header, ciphertext)

    def close(self) -> None:
        self.stream.close()


def seal_frame(channel: SecureChannel, plaintext: bytes) -> bytes:
    """Encrypt one frame with the next send nonce; returns header + ciphertext."""
    if channel._send_nonce >= _NONCE_LIMIT:
        raise ConnectionClosed("send nonce space exhausted; reconnect")
    header = _LENGTH.pack(len(plaintext) + TAG_SIZE)
    ciphertext = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        plaintext, header, _nonce(channel._send_nonce), channel._send_key
    )
    channel._send_nonce += 1
    return header + ciphertext


def open_frame(channel: SecureChannel, header: bytes, ciphertext: bytes) -> bytes:
    """Decrypt one frame with the next receive nonce; raise `FrameAuthenticationFailed`."""
    if channel._recv_nonce >= _NONCE_LIMIT:
        raise ConnectionClosed("receive nonce space exhausted")
    try:
        plaintext = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
            ciphertext, header, _nonce(channel._recv_nonce), channel._recv_key
        )
    except nacl.exceptions.CryptoError:
        raise FrameAuthenticationFailed(
            f"frame {channel._recv_nonce} from {channel.remote_id!r} failed authentication"
        ) from None
    channel._recv_nonce += 1
    return plaintext


async def perform_handshake(
    stream: ByteStream,
    identity: PrivateKey,
    network_id: str,
    expected: NodeId | None = None,
    timeout: float = 10.0,
    max_frame: int = MAX_FRAME,
) -> SecureChannel:
    """Run the handshake on `stream`; return the channel or raise `HandshakeFailed`.

    `expected` is the node id the dialer meant to reach (None when accepting: the
    listener learns who called). The stream is closed on failure.
    """
    try:
        return await asyncio.wait_for(_handshake(stream, identity, network_id, expected, max_frame), timeout)
    except asyncio.TimeoutError:
        stream.close()
        raise HandshakeFailed(f"handshake with {stream.remote_address} timed out") from None
    except BcaiError as exc:
        stream.close()
        if isinstance(exc, HandshakeFailed):
            raise
        raise HandshakeFailed(f"handshake with {stream.remote_address} failed: {exc}") from None


async def _handshake(
    stream: ByteStream, identity: PrivateKey, network_id: str, expected: NodeId | None, max_frame: int
) -> SecureChannel:
    ephemeral_secret = os.urandom(32)
    ephemeral_public = sodium.crypto_scalarmult_base(ephemeral_secret)
    await stream.write(MAGIC + ephemeral_public)
    hello = await stream.read_exactly(_HELLO_SIZE)
    # Anything that does not open with our magic (plaintext, another protocol) is refused.
    if hello[: len(MAGIC)] != MAGIC:
        raise HandshakeFailed(f"{stream.remote_address} does not speak the bcai p2p protocol")
    their_ephemeral = hello[len(MAGIC):]
    # A reflected hello would make both directions share one key.
    if their_ephemeral == ephemeral_public:
        raise HandshakeFailed("peer reflected our ephemeral key")
    try:
        shared = sodium.crypto_scalarmult(ephemeral_secret, their_ephemeral)
    except (nacl.exceptions.CryptoError, RuntimeError, ValueError):
        raise HandshakeFailed("peer sent a low-order ephemeral key") from None
    if shared == bytes(32):
        raise HandshakeFailed("peer sent a low-order ephemeral key")
    send_key, recv_key, challenge = compute_session_keys(ephemeral_public, their_ephemeral, shared)

    # The remote key is not known yet; the channel is bound to it once the proof checks out.
    channel = SecureChannel(stream, send_key, recv_key, identity.public_key, max_frame)
    signature = identity.sign(HANDSHAKE_DOMAIN, network_id, challenge)
    await channel.send(identity.public_key.raw + signature)
    try:
        proof = await channel.recv()
    except (FrameAuthenticationFailed, FrameTooLarge) as exc:
        raise HandshakeFailed(f"bad handshake proof from {stream.remote_address}: {exc}") from None
    if len(proof) != _AUTH_SIZE:
        raise HandshakeFailed("handshake proof has the wrong size")
    remote_key = PublicKey(proof[:32])
    if not remote_key.is_valid_signature(HANDSHAKE_DOMAIN, network_id, challenge, proof[32:]):
        raise HandshakeFailed(f"{stream.remote_address} could not prove its identity (or is on another network)")
    if remote_key == identity.public_key:
        raise HandshakeFailed("connected to ourselves")
    remote_id = NodeId.of(remote_key)
    if expected is not None and remote_id != expected:
        raise PeerIdentityMismatch(f"expected node {expected!r} at {stream.remote_address}, found {remote_id!r}")
    channel.remote_key = remote_key
    channel.remote_id = remote_id
    return channel
