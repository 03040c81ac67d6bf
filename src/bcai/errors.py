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


# --- node -----------------------------------------------------------------------------


class NodeError(BcaiError):
    """Base for errors of the node process: mempool, configuration, lifecycle."""

    code = "node"


class NodeStartFailed(NodeError):
    """Raised when the node cannot start serving: a p2p or API address is taken or not ours."""

    code = "node_start_failed"


class NodeHomeLocked(NodeError):
    """Raised when another node process holds the home's lock (two would double-sign)."""

    code = "node_home_locked"
    http_status = 409


class InvalidJobMessage(NodeError):
    """Raised when a job-channel message is malformed, badly signed, or not from a participant of its job."""

    code = "invalid_job_message"
    http_status = 400
    peer_fault = True


class MempoolError(NodeError):
    """Base for transactions the mempool will not hold (the tx may be valid later)."""

    code = "mempool"
    http_status = 409


class MempoolFull(MempoolError):
    """Raised when the mempool is at its limit and the tx does not pay more than what it holds."""

    code = "mempool_full"

# --- sandbox ----------------------------------------------------------------------------
# One leaf per error kind a sandboxed execution can end in. `kind` is the short name the
# result records and the CLI prints (`error_kind`); `code` is `sandbox_<kind>`.
# Untrusted code misbehaving is not a peer fault of the node that runs it, and none of
# these is retryable: the same code with the same inputs and limits fails the same way.


class SandboxError(BcaiError):
    """Base for sandboxed executions (Python bridge and WASM engine) that did not succeed."""

    code = "sandbox"
    kind = "sandbox"
    http_status = 422


class SandboxUnavailable(SandboxError):
    """Raised when the sandbox itself cannot start (libseccomp missing, zygote died, bad setup)."""

    code = "sandbox_unavailable"
    kind = "unavailable"
    http_status = 503
    retryable = True


class TxAlreadyKnown(MempoolError):
    """Raised when the mempool already holds (or just committed) a tx with the same hash."""

    code = "tx_already_known"


class NonceTooFarAhead(MempoolError):
    """Raised when a tx's nonce leaves a gap larger than the per-sender queue allows."""

    code = "nonce_too_far_ahead"
    retryable = True


class FeeTooLowToReplace(MempoolError):
    """Raised when a tx replaces a pending one (same sender and nonce) without a 10% higher fee."""

    code = "fee_too_low_to_replace"

# --- ledger ---------------------------------------------------------------------------


class LedgerError(BcaiError):
    """Base for ledger (on-chain state machine) errors."""

    code = "ledger"
    http_status = 400


class InvalidTransaction(LedgerError):
    """Raised when a transaction is rejected; the state is left exactly as it was."""

    code = "invalid_transaction"
    http_status = 400
    peer_fault = True


class MalformedTransaction(InvalidTransaction):
    """Raised when tx bytes do not decode to a well-formed, canonical, size-bounded transaction."""

    code = "tx_malformed"


class TransactionTooLarge(InvalidTransaction):
    """Raised when tx bytes exceed the `max_tx_bytes` parameter."""

    code = "tx_too_large"
    http_status = 413


class BadTransactionSignature(InvalidTransaction):
    """Raised when a tx signature does not verify for its sender key, the "tx" domain and the chain id."""

    code = "tx_bad_signature"


class WrongChainId(InvalidTransaction):
    """Raised when a tx names a chain id other than this chain's."""

    code = "tx_wrong_chain"


class BadNonce(InvalidTransaction):
    """Raised when a tx nonce is not the sender's next nonce (a replay or a gap)."""

    code = "tx_bad_nonce"
    http_status = 409


class FeeTooLow(InvalidTransaction):
    """Raised when a tx fee is below the `min_fee` parameter."""

    code = "tx_fee_too_low"


class InsufficientFunds(InvalidTransaction):
    """Raised when an account's balance cannot cover an amount plus the fee."""

    code = "insufficient_funds"
    http_status = 402


class InvalidAmount(InvalidTransaction):
    """Raised when an amount is zero where it must be positive, negative, or overflows the supply cap."""

    code = "invalid_amount"


class InsufficientStake(InvalidTransaction):
    """Raised when a bond, worker or evaluator stake is too small, or an unbond exceeds what is bonded."""

    code = "insufficient_stake"


class UnknownEntity(InvalidTransaction):
    """Raised when a tx names a job, worker, evaluator, validator, proposal or challenge that does not exist."""

    code = "unknown_entity"
    http_status = 404


class AlreadyExists(InvalidTransaction):
    """Raised when a tx registers something that is already registered."""

    code = "already_exists"
    http_status = 409


class NotAuthorized(InvalidTransaction):
    """Raised when the sender may not do this (not the job's client, worker or evaluator, not a validator...)."""

    code = "not_authorized"
    http_status = 403


class WrongState(InvalidTransaction):
    """Raised when the target is not in a state that allows this tx (job closed, validator not jailed...)."""

    code = "wrong_state"
    http_status = 409


class DuplicateAction(InvalidTransaction):
    """Raised when a sender repeats a one-time action (double vote, double attestation, double volunteer)."""

    code = "duplicate_action"
    http_status = 409


class InvalidParameter(InvalidTransaction):
    """Raised when a parameter change names an unknown parameter or a value outside its range."""

    code = "invalid_parameter"


class InvalidJobSpec(InvalidTransaction):
    """Raised when a `PostJob` has inconsistent numbers (workers, evaluators, deadline, threshold)."""

    code = "invalid_job_spec"


class InvalidBlock(LedgerError):
    """Raised when a block cannot be applied (wrong height, an invalid tx, bad evidence); state is unchanged."""

    code = "invalid_block"
    peer_fault = True


class InvalidConsensusParams(ConfigError):
    """Raised when consensus parameters cannot run a chain (a difficulty rule or genesis target out of range)."""

    code = "consensus_params_invalid"


class InvalidGenesis(ConfigError):
    """Raised when a genesis file is missing, malformed, or describes an inconsistent chain."""

    code = "genesis_invalid"


# --- store ----------------------------------------------------------------------------


class StoreError(BcaiError):
    """Base for chain-store (persistence) errors."""

    code = "store"
    http_status = 500


class StoreCorrupted(StoreError):
    """Raised when stored data fails its own checks (a state root or block hash does not match)."""

    code = "store_corrupted"


class BlockNotFound(StoreError):
    """Raised when a block height or hash is not in the store."""

    code = "block_not_found"
    http_status = 404


class StoreConflict(StoreError):
    """Raised when a block is written at a height that is not the next one."""

    code = "store_conflict"
    http_status = 409


class InvariantViolation(LedgerError):
    """Raised when a ledger invariant (supply conservation, no negative balance, escrow) fails."""

    code = "invariant_violation"
    http_status = 500

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


class ConstantInputNeeded(UnsupportedOperators):
    """Raised when an ONNX operator needs one of its inputs as a constant (axes, a shape,
    pads, LSTM weights) but the graph computes it or takes it as a graph input; `value`
    names it. `from_onnx(..., bind={name: array})` fixes a graph input to a value."""

    code = "vm_constant_input_needed"

    def __init__(self, message: str, value: str) -> None:
        super().__init__(message)
        self.value = value


class InvalidModel(FrontendError):
    """Raised when an ONNX file or torch module cannot be read or has an invalid structure."""

    code = "vm_invalid_model"


class InvalidBml(FrontendError):
    """Raised when a BML document is not valid YAML or breaks the BML schema."""

    code = "vm_invalid_bml"

class SandboxMemoryLimit(SandboxError):
    """Raised when the code tried to use more memory than its limit allows."""

    code = "sandbox_memory_limit"
    kind = "memory_limit"


class SandboxTimeLimit(SandboxError):
    """Raised when the code ran past its CPU-time or wall-clock limit (Python bridge)."""

    code = "sandbox_time_limit"
    kind = "time_limit"


class SandboxImportDenied(SandboxError):
    """Raised when Python code imported a module outside its allow-list."""

    code = "sandbox_import_denied"
    kind = "import_denied"


class SandboxFileOpsLimit(SandboxError):
    """Raised when Python code made more file operations than allowed, or wrote a file too big."""

    code = "sandbox_file_ops_limit"
    kind = "file_ops_limit"


class SandboxNetworkDenied(SandboxError):
    """Raised when code without network access tried to open a socket or resolve a name."""

    code = "sandbox_network_denied"
    kind = "network_denied"


class SandboxForbidden(SandboxError):
    """Raised when Python code tried an operation no sandbox allows: starting processes or
    threads, signalling other processes, ctypes, or touching files outside its work dir."""

    code = "sandbox_forbidden"
    kind = "forbidden"


class SandboxOutputInvalid(SandboxError):
    """Raised when the code's outputs are missing, malformed, or of a type that cannot cross."""

    code = "sandbox_output_invalid"
    kind = "output_invalid"


class SandboxOutputTooLarge(SandboxError):
    """Raised when the code produced more output bytes than its cap."""

    code = "sandbox_output_too_large"
    kind = "output_too_large"


class SandboxCrashed(SandboxError):
    """Raised when Python code raised an uncaught exception or its process died abnormally."""

    code = "sandbox_crashed"
    kind = "crashed"


class SandboxOutOfFuel(SandboxError):
    """Raised when a WASM module used up its instruction budget (fuel)."""

    code = "sandbox_out_of_fuel"
    kind = "out_of_fuel"


class SandboxTimeout(SandboxError):
    """Raised when a WASM module ran past its wall-clock limit (epoch deadline)."""

    code = "sandbox_timeout"
    kind = "timeout"


class SandboxTrap(SandboxError):
    """Raised when a WASM module trapped (unreachable, out-of-bounds access, bad host call ...)."""

    code = "sandbox_trap"
    kind = "trap"


class SandboxInvalidModule(SandboxError):
    """Raised when WASM bytes or text do not compile, or the module's imports/exports do not
    match the host interface (missing entry, unknown imports, WASI, threads)."""

    code = "sandbox_invalid_module"
    kind = "invalid_module"
    http_status = 400


class SandboxNondeterministic(SandboxError):
    """Raised when the same module and input gave different output hashes on two runs."""

    code = "sandbox_nondeterministic"
    kind = "nondeterministic"


SANDBOX_ERRORS: dict[str, type[SandboxError]] = {
    cls.kind: cls
    for cls in (
        SandboxUnavailable,
        SandboxMemoryLimit,
        SandboxTimeLimit,
        SandboxImportDenied,
        SandboxFileOpsLimit,
        SandboxNetworkDenied,
        SandboxForbidden,
        SandboxOutputInvalid,
        SandboxOutputTooLarge,
        SandboxCrashed,
        SandboxOutOfFuel,
        SandboxTimeout,
        SandboxTrap,
        SandboxInvalidModule,
        SandboxNondeterministic,
    )
}

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


class InvalidSchedulerNode(SchedulerError):
    """Raised when a scheduler node record or on-chain volunteer record holds an invalid field."""

    code = "invalid_scheduler_node"
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


class OutboundLimitReached(P2PError):
    """Raised when dialing would pass the host's outbound connection cap (`max_outbound`)
    or its connection memory pool, and no idle connection a lookup opened can make room."""

    code = "outbound_limit_reached"
    http_status = 503
    retryable = True


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


class ContentStoreFull(ContentStoreError):
    """Raised when the content store cannot write: the disk (or the user's quota) is full."""

    code = "content_store_full"
    http_status = 507
    retryable = True


# --- consensus ------------------------------------------------------------------------


class ConsensusError(BcaiError):
    """Base for consensus errors: messages, blocks, certificates and proofs of useful work."""

    code = "consensus"
    http_status = 400


class InvalidMessage(ConsensusError):
    """Raised when a consensus message is malformed, oversized, wrongly signed or from a non-validator."""

    code = "invalid_message"
    peer_fault = True


class BlockRejected(ConsensusError):
    """Raised when a proposed or synced block breaks a header, payload, size or evidence rule."""

    code = "block_rejected"
    peer_fault = True


class InvalidProof(BlockRejected):
    """Raised when a block's proof of useful work fails: wrong task, bad result or hash above target."""

    code = "invalid_proof"


class UnknownProofKind(BlockRejected):
    """Raised when a block names a proof-of-useful-work kind no verifier is registered for."""

    code = "unknown_proof_kind"


class InvalidCertificate(ConsensusError):
    """Raised when a commit certificate lacks more than 2/3 of voting power or holds a bad signature."""

    code = "invalid_certificate"
    peer_fault = True


class InvalidEvidence(ConsensusError):
    """Raised when duplicate-vote evidence does not prove two conflicting signed votes."""

    code = "invalid_evidence"
    peer_fault = True


class SimulationError(BcaiError):
    """Raised when a simulation specification (partition, crash, byzantine option) is invalid."""

    code = "simulation_spec"
    exit_code = 2


# --- node process, devnet and SDK -----------------------------------------------------


class DevnetError(NodeError):
    """Base for local devnet errors."""

    code = "devnet"


class DevnetNotFound(DevnetError):
    """Raised when a devnet command finds no devnet.json in the devnet home."""

    code = "devnet_not_found"
    http_status = 404


class DevnetCorrupt(DevnetError):
    """Raised when the devnet home's devnet.json is not the file `devnet up` wrote."""

    code = "devnet_corrupt"


class DevnetAlreadyRunning(DevnetError):
    """Raised when `devnet up` finds processes of the same devnet still running."""

    code = "devnet_already_running"
    http_status = 409


class DevnetStartFailed(DevnetError):
    """Raised when devnet nodes exit or do not commit a block within the wait."""

    code = "devnet_start_failed"
    retryable = True


class ClientError(NodeError):
    """Raised by the SDK when a node answers with an error (`code` is the node's code)."""

    code = "client_error"

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.code = code
        self.http_status = status or 400
        self.retryable = status in (429, 503)


class NodeBusy(NodeError):
    """Raised when a node declines a request for now to spare its peers (an artifact it
    would have to ask them for, past the pace they allow us); try again shortly."""

    code = "node_busy"
    http_status = 503
    retryable = True


class StorageFull(NodeError):
    """Raised when an artifact upload would take the node's API uploads past their quota
    (`[api] upload_quota_bytes`) and nothing it may evict frees enough room: every upload is
    still within its grace or referenced by a job. Room comes back as jobs end and grace
    runs out, or when the operator raises the quota."""

    code = "storage_full"
    http_status = 507
    retryable = True


class NodeUnreachable(NodeError):
    """Raised by the SDK and CLI when no node answers at the given URL."""

    code = "node_unreachable"
    http_status = 503
    retryable = True


class TxDropped(NodeError):
    """Raised while waiting for a tx that left the mempool without being committed (no longer
    valid after a block, evicted, replaced); `reason` is the code the node gave."""

    code = "tx_dropped"
    http_status = 409

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class TxTimeout(NodeError):
    """Raised when a submitted transaction is not committed within the wait."""

    code = "tx_timeout"
    http_status = 504
    retryable = True


# --- command line ---------------------------------------------------------------------


class CliError(BcaiError):
    """Base for how a `bcai` command can end other than with its result."""

    code = "cli"


class FileAccessError(CliError):
    """Raised when a file or directory a command reads or writes cannot be used (missing, a
    file where a directory should be, no permission, a read-only or full disk)."""

    code = "file_access"


class OutputFailed(CliError):
    """Raised when a command cannot write its result to stdout (closed, a full disk, or a
    reader such as `head` that left); the message goes to stderr instead."""

    code = "output_failed"


class Interrupted(CliError):
    """Raised when the user interrupts a command (Ctrl-C); files it was writing are either
    complete or removed."""

    code = "interrupted"
    exit_code = 130


class InternalError(CliError):
    """Raised when a command fails in a way bcai did not foresee (a bug); `BCAI_TRACEBACK=1`
    shows where."""

    code = "internal_error"


# --- jobs (training runner, evaluation, job flow) --------------------------------------


class JobFlowError(BcaiError):
    """Base for errors of the training runner and the job flow around it."""

    code = "job_flow"


class InvalidDataset(JobFlowError):
    """Raised when a dataset artifact or split is malformed (shapes, dtypes, names)."""

    code = "invalid_dataset"
    peer_fault = True


class InvalidJobDocument(JobFlowError):
    """Raised when a job spec document (what a PostJob's spec CID names) is malformed."""

    code = "invalid_job_document"
    http_status = 400
    peer_fault = True


class JobTimeout(JobFlowError):
    """Raised when a job does not reach the awaited state (or a participant's message) in time."""

    code = "job_timeout"
    retryable = True


class InvalidRoundUpdate(JobFlowError):
    """Raised when a federated round update is malformed, unsigned, or from a non-worker."""

    code = "invalid_round_update"
    peer_fault = True


class RoundTimeout(JobFlowError):
    """Raised when no worker's update for a round arrived in time (not even our own)."""

    code = "round_timeout"
    retryable = True


class InvalidSubmittedModel(JobFlowError):
    """Raised when submitted model bytes do not fit the job's program (names, shapes, dtypes)."""

    code = "invalid_submitted_model"
    peer_fault = True



# --- data-parallel jobs (rendezvous on the job channel, rank processes) --------------------


class InvalidDpMessage(JobFlowError):
    """Raised when a data-parallel job message (join, leave, store, checkpoint) is malformed,
    badly signed, for another job, or from an address that is not one of the job's workers."""

    code = "invalid_dp_message"
    peer_fault = True


class RankFailed(JobFlowError):
    """Raised when this worker's data-parallel rank process dies, stops reporting, or fails
    for a reason other than a lost peer (a lost peer starts a new generation instead)."""

    code = "rank_failed"
