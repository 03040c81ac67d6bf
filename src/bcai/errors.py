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


# --- vm -------------------------------------------------------------------------------


class VMError(BcaiError):
    """Base for errors of the ML virtual machine (programs, front ends, execution)."""

    code = "vm"
    http_status = 400
    exit_code = 3


class MalformedProgram(VMError):
    """Raised when bytes or an object do not decode into a program (bad CBOR, missing or
    mistyped field, unknown instruction kind)."""

    code = "vm_malformed_program"
    peer_fault = True


class UnknownInstruction(MalformedProgram):
    """Raised when a program names an instruction kind or tensor op the VM does not have."""

    code = "vm_unknown_instruction"


class InvalidProgram(VMError):
    """Raised when a well-formed program fails validation (see the leaves)."""

    code = "vm_invalid_program"
    peer_fault = True


class UndefinedTensor(InvalidProgram):
    """Raised when an instruction reads a tensor id that no earlier instruction or input defines."""

    code = "vm_undefined_tensor"


class ShapeMismatch(InvalidProgram):
    """Raised when tensor shapes do not fit an instruction (checked before execution)."""

    code = "vm_shape_mismatch"


class DtypeMismatch(InvalidProgram):
    """Raised when a tensor's dtype does not fit an instruction (checked before execution)."""

    code = "vm_dtype_mismatch"


class InvalidFeed(VMError):
    """Raised when the inputs given to a program entry are missing, extra, or of the wrong
    shape or dtype."""

    code = "vm_invalid_feed"


class ResourceLimitExceeded(VMError):
    """Base for a program going over the limits it declared."""

    code = "vm_resource_limit"
    http_status = 422


class MemoryLimitExceeded(ResourceLimitExceeded):
    """Raised when a program's live tensors would exceed its declared memory limit."""

    code = "vm_memory_limit_exceeded"


class GasExhausted(ResourceLimitExceeded):
    """Raised when a program entry would use more gas than its declared limit."""

    code = "vm_gas_exhausted"


class DeviceUnavailable(VMError):
    """Raised when a requested or required hardware backend is not present on this node."""

    code = "vm_device_unavailable"
    http_status = 503
    exit_code = 4


class ExecutionFailed(VMError):
    """Raised when an instruction fails while executing on real tensors."""

    code = "vm_execution_failed"
    http_status = 500


class PythonBridgeUnavailable(VMError):
    """Raised when a program reaches `PythonExecute` and no sandboxed Python bridge is wired in."""

    code = "vm_python_bridge_unavailable"
    http_status = 501


class FrontendError(VMError):
    """Base for errors turning torch modules, ONNX files or BML into programs."""

    code = "vm_frontend"
    exit_code = 2


class UnsupportedOperators(FrontendError):
    """Raised when an ONNX graph or torch module uses operators the VM cannot express; the
    message lists all of them."""

    code = "vm_unsupported_operators"


class InvalidModel(FrontendError):
    """Raised when an ONNX file or torch module cannot be read or has an invalid structure."""

    code = "vm_invalid_model"


class InvalidBml(FrontendError):
    """Raised when a BML document is not valid YAML or breaks the BML schema."""

    code = "vm_invalid_bml"
