"""The bcai error tree.

One root (`BcaiError`), one base per subsystem, leaves with a "raised when ..." docstring.
Policy lives in class attributes, not in `if` chains at call sites:

- `code`: a stable machine-readable string (API error bodies, `--json` output);
- `http_status`: what the REST API answers when this error reaches it;
- `exit_code`: what the CLI exits with;
- `retryable`: whether trying the same thing again later may succeed;
- `peer_fault`: True when the error means a remote party sent bad data (lower its score),
  False when it is our own condition ("we closed it" vs "the peer broke it").

Subsystems add their leaves in their own section below, each under its base.
"""

from __future__ import annotations


class BcaiError(Exception):
    """Root of every error bcai raises on purpose."""

    code = "error"
    http_status = 500
    exit_code = 1
    retryable = False
    peer_fault = False

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": str(self)}


class ConfigError(BcaiError):
    """Raised when a configuration file, genesis file or command-line option is invalid."""

    code = "config_invalid"
    http_status = 400
    exit_code = 2


# --- encoding -------------------------------------------------------------------------


class EncodingError(BcaiError):
    """Base for canonical-encoding errors; the bytes came from someone else."""

    code = "encoding"
    http_status = 400
    peer_fault = True


class MalformedEncoding(EncodingError):
    """Raised when bytes are not valid CBOR, or hold a type consensus objects may not carry."""

    code = "malformed_encoding"


class NonCanonicalEncoding(EncodingError):
    """Raised when bytes decode but are not the one canonical encoding of their value."""

    code = "non_canonical_encoding"


class UnencodableValue(BcaiError):
    """Raised when our own code asks to encode a value the canonical encoding forbids."""

    code = "unencodable_value"


# --- crypto ---------------------------------------------------------------------------


class CryptoError(BcaiError):
    """Base for key, signature, content-id and Merkle errors."""

    code = "crypto"
    http_status = 400
    peer_fault = True


class InvalidSignature(CryptoError):
    """Raised when a signature does not verify for the claimed key, domain and chain id."""

    code = "invalid_signature"


class InvalidKey(CryptoError):
    """Raised when bytes or a key file do not hold a valid ed25519 key."""

    code = "invalid_key"


class InvalidCid(CryptoError):
    """Raised when a string or bytes are not a CIDv1 bcai understands, or content does not match."""

    code = "invalid_cid"


class InvalidMerkleProof(CryptoError):
    """Raised when a Merkle inclusion proof does not lead to the expected root."""

    code = "invalid_merkle_proof"


class DecryptionFailed(CryptoError):
    """Raised when a sealed box cannot be opened with the given key."""

    code = "decryption_failed"


class KeyStoreError(BcaiError):
    """Raised when a named key is missing, already exists, or its file is unsafe to use."""

    code = "keystore"
    exit_code = 2


# --- p2p ------------------------------------------------------------------------------


class P2PError(BcaiError):
    """Base for networking errors (transport, handshake, gossip, RPC, content transfer)."""

    code = "p2p"
    http_status = 502
    retryable = True


class ConnectionClosed(P2PError):
    """Raised when a connection ends (either side closed it) while reading or writing."""

    code = "connection_closed"


class HandshakeFailed(P2PError):
    """Raised when a peer does not complete the authenticated handshake (plaintext, wrong
    protocol, bad signature, other network id, timeout)."""

    code = "handshake_failed"
    peer_fault = True


class PeerIdentityMismatch(HandshakeFailed):
    """Raised when the peer we dialed proves a different identity than the one expected."""

    code = "peer_identity_mismatch"


class FrameTooLarge(P2PError):
    """Raised when a frame's length prefix exceeds the hard maximum (checked before reading it)."""

    code = "frame_too_large"
    peer_fault = True


class FrameAuthenticationFailed(P2PError):
    """Raised when a frame fails AEAD authentication (tampered, replayed or reordered)."""

    code = "frame_authentication_failed"
    peer_fault = True


class MalformedMessage(P2PError):
    """Raised when an authenticated frame does not hold a well-formed protocol message."""

    code = "malformed_message"
    peer_fault = True
    retryable = False


class InvalidGossip(P2PError):
    """Raised by a topic handler when a gossip message is invalid (the sender is penalised)."""

    code = "invalid_gossip"
    peer_fault = True
    retryable = False


class InvalidNodeRecord(P2PError):
    """Raised when a node record is malformed, badly signed or does not match its node id."""

    code = "invalid_node_record"
    http_status = 400
    peer_fault = True
    retryable = False


class PeerBanned(P2PError):
    """Raised when we refuse to talk to a peer that is banned for misbehaviour."""

    code = "peer_banned"


class PeerNotConnected(P2PError):
    """Raised when a request or message is addressed to a peer we hold no connection to."""

    code = "peer_not_connected"


class RequestTimeout(P2PError):
    """Raised when a request gets no response within its timeout."""

    code = "request_timeout"
    http_status = 504


class RequestFailed(P2PError):
    """Raised when the remote peer answers a request with an error (unknown protocol,
    handler error, not found)."""

    code = "request_failed"


class ContentUnavailable(P2PError):
    """Raised when no provider could deliver all chunks of an object (what arrived is kept)."""

    code = "content_unavailable"
    http_status = 404


class InvalidManifest(P2PError):
    """Raised when a content manifest is malformed or inconsistent (sizes, chunk ids)."""

    code = "invalid_manifest"
    http_status = 400
    peer_fault = True
    retryable = False


# --- content store --------------------------------------------------------------------


class ContentStoreError(BcaiError):
    """Base for content-store errors."""

    code = "content_store"


class ContentNotFound(ContentStoreError):
    """Raised when a content id is not in the store."""

    code = "content_not_found"
    http_status = 404


class CorruptContent(ContentStoreError):
    """Raised when stored bytes no longer hash to their content id (they are removed)."""

    code = "corrupt_content"
