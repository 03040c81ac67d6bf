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


# --- scheduler ------------------------------------------------------------------------


class SchedulerError(BcaiError):
    """Base for node telemetry, admission and assignment errors."""

    code = "scheduler"
    http_status = 400


class InvalidTelemetry(SchedulerError):
    """Raised when a telemetry sample holds a value outside its domain (negative, NaN, > 100%)."""

    code = "invalid_telemetry"
    peer_fault = True


class InvalidJobPolicy(SchedulerError):
    """Raised when a job's placement policy is malformed (non-positive min_nodes, negative needs)."""

    code = "invalid_job_policy"


class InvalidNodeRecord(SchedulerError):
    """Raised when a node record or on-chain volunteer record holds an invalid field."""

    code = "invalid_node_record"
    peer_fault = True


class UnknownStrategy(SchedulerError):
    """Raised when an assignment strategy name is not one bcai ships."""

    code = "unknown_strategy"


class InvalidAssignment(SchedulerError):
    """Raised when an assignment-history operation gets an invalid task id, node id or time."""

    code = "invalid_assignment"


# --- training -------------------------------------------------------------------------


class TrainingError(BcaiError):
    """Base for aggregation, privacy and secure-aggregation errors."""

    code = "training"
    http_status = 400


class InvalidUpdate(TrainingError):
    """Raised when model updates are empty, disagree on names, shapes or dtypes, or hold NaN/inf."""

    code = "invalid_update"
    peer_fault = True


class InvalidAggregationParameter(TrainingError):
    """Raised when an aggregation rule's parameter does not fit the updates (e.g. Krum with n <= 2f + 2)."""

    code = "invalid_aggregation_parameter"


class UnsupportedPrivacyComposition(TrainingError):
    """Raised when differential privacy wraps a rule with no L2 sensitivity bound (median, Krum)."""

    code = "unsupported_privacy_composition"


class MaskedClientDropped(TrainingError):
    """Raised when a secure-aggregation client that masked its update is missing from the sum."""

    code = "masked_client_dropped"
    retryable = True


class InvalidMaskedUpdate(TrainingError):
    """Raised when a masked update is malformed, duplicated, or would overflow the fixed-point range."""

    code = "invalid_masked_update"
    peer_fault = True
