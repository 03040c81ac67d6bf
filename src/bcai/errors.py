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


# --- consensus ------------------------------------------------------------------------


class ConsensusError(BcaiError):
    """Base for consensus errors: messages, blocks, certificates and proofs of useful work."""

    code = "consensus"
    http_status = 400


class InvalidMessage(ConsensusError):
    """Raised when a consensus message is malformed, oversized, wrongly signed or from a non-validator."""

    code = "invalid_message"
    peer_fault = True


class InvalidBlock(ConsensusError):
    """Raised when a proposed or synced block breaks a header, payload or evidence rule."""

    code = "invalid_block"
    peer_fault = True


class InvalidProof(InvalidBlock):
    """Raised when a block's proof of useful work fails: wrong task, bad result or hash above target."""

    code = "invalid_proof"


class InvalidCertificate(ConsensusError):
    """Raised when a commit certificate lacks more than 2/3 of voting power or holds a bad signature."""

    code = "invalid_certificate"
    peer_fault = True


class InvalidEvidence(ConsensusError):
    """Raised when duplicate-vote evidence does not prove two conflicting signed votes."""

    code = "invalid_evidence"
    peer_fault = True


class DoubleSignRefused(ConsensusError):
    """Raised when our own signer is asked to sign a second, different vote for one height/round/type."""

    code = "double_sign_refused"
    http_status = 409


class UnknownProofKind(InvalidBlock):
    """Raised when a block names a proof-of-useful-work kind no verifier is registered for."""

    code = "unknown_proof_kind"


class SimulationError(BcaiError):
    """Raised when a simulation specification (partition, crash, byzantine option) is invalid."""

    code = "simulation_spec"
    exit_code = 2
