"""Consensus messages: block, header, proposal, vote, commit certificate, evidence.

All are frozen dataclasses. Each has one canonical encoding (a CBOR list in a fixed
field order, `to_list` / `from_list`), and `encode_message` / `decode_message` put a
one-word tag in front for the wire. Signatures cover the canonical encoding of the
signed fields under the domain "proposal" or "vote" and the chain id.

`decode_message` checks every field's type and size and raises `InvalidMessage`: a
message that decodes is well formed (signatures are checked by the engine, which knows
the validator set).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Union

from bcai.crypto import PrivateKey, PublicKey, compute_merkle_root, sha256
from bcai.encoding import decode, encode
from bcai.errors import EncodingError, InvalidMessage

PREVOTE = 1
PRECOMMIT = 2
VOTE_TYPES = (PREVOTE, PRECOMMIT)

HASH_SIZE = 32
ADDRESS_SIZE = 20
SIGNATURE_SIZE = 64
MAX_INT64 = 2**63 - 1
MAX_ROUND = 10_000
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the network's hard frame limit (SPEC B)
MAX_VOTE_BYTES = 256


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise InvalidMessage(what)


def _hash(value: Any, what: str) -> bytes:
    _expect(isinstance(value, bytes) and len(value) == HASH_SIZE, f"{what} must be {HASH_SIZE} bytes")
    return value


def _uint(value: Any, what: str, top: int = MAX_INT64) -> int:
    _expect(type(value) is int and 0 <= value <= top, f"{what} must be an integer in 0..{top}")
    return value


def _list(value: Any, size: int, what: str) -> list[Any]:
    _expect(isinstance(value, list) and len(value) == size, f"{what} must be a list of {size} fields")
    return value


@dataclass(frozen=True)
class BlockHeader:
    chain_id: str
    height: int
    time_ms: int
    prev_hash: bytes
    tx_root: bytes
    evidence_root: bytes
    app_hash: bytes
    last_commit_hash: bytes  # hash of the certificate of block height - 1 the block carries
    proposer: bytes  # address (20 bytes) of the validator that built the block
    proof_kind: str
    task_id: bytes
    model_hash: bytes
    nonce: int
    target: int

    def to_list(self) -> list[Any]:
        return [
            self.chain_id, self.height, self.time_ms, self.prev_hash, self.tx_root, self.evidence_root,
            self.app_hash, self.last_commit_hash, self.proposer, self.proof_kind, self.task_id, self.model_hash,
            self.nonce, self.target,
        ]

    @classmethod
    def from_list(cls, fields: Any) -> BlockHeader:
        f = _list(fields, 14, "header")
        _expect(isinstance(f[0], str) and 0 < len(f[0]) <= 64, "chain_id must be a short string")
        _expect(isinstance(f[8], bytes) and len(f[8]) == ADDRESS_SIZE, "proposer must be a 20-byte address")
        _expect(isinstance(f[9], str) and 0 < len(f[9]) <= 32, "proof_kind must be a short string")
        return cls(
            f[0], _uint(f[1], "height"), _uint(f[2], "time_ms"), _hash(f[3], "prev_hash"), _hash(f[4], "tx_root"),
            _hash(f[5], "evidence_root"), _hash(f[6], "app_hash"), _hash(f[7], "last_commit_hash"), f[8], f[9],
            _hash(f[10], "task_id"), _hash(f[11], "model_hash"), _uint(f[12], "nonce", 2**64 - 1),
            _uint(f[13], "target", 2**64 - 1),
        )

    @cached_property
    def block_id(self) -> bytes:
        return sha256(encode(self.to_list()))


@dataclass(frozen=True)
class Vote:
    vote_type: int  # PREVOTE or PRECOMMIT
    height: int
    round: int
    block_id: bytes | None  # None is a vote for nil
    validator: bytes  # address
    signature: bytes

    def to_list(self) -> list[Any]:
        return [self.vote_type, self.height, self.round, self.block_id, self.validator, self.signature]

    @classmethod
    def from_list(cls, fields: Any) -> Vote:
        f = _list(fields, 6, "vote")
        _expect(f[0] in VOTE_TYPES and type(f[0]) is int, "vote type must be 1 (prevote) or 2 (precommit)")
        _expect(f[3] is None or (isinstance(f[3], bytes) and len(f[3]) == HASH_SIZE), "block_id must be nil or 32 bytes")
        _expect(isinstance(f[4], bytes) and len(f[4]) == ADDRESS_SIZE, "validator must be a 20-byte address")
        _expect(isinstance(f[5], bytes) and len(f[5]) == SIGNATURE_SIZE, "signature must be 64 bytes")
        return cls(f[0], _uint(f[1], "height"), _uint(f[2], "round", MAX_ROUND), f[3], f[4], f[5])

    def signed_bytes(self) -> bytes:
        return encode_vote_sign_bytes(self.vote_type, self.height, self.round, self.block_id)

    def verify(self, public_key: PublicKey, chain_id: str) -> None:
        """Raise `InvalidSignature` unless the vote is signed by `public_key`."""
        public_key.verify("vote", chain_id, self.signed_bytes(), self.signature)


def encode_vote_sign_bytes(vote_type: int, height: int, round_: int, block_id: bytes | None) -> bytes:
    return encode([vote_type, height, round_, block_id])


def sign_vote(key: PrivateKey, chain_id: str, vote_type: int, height: int, round_: int, block_id: bytes | None) -> Vote:
    sig = key.sign("vote", chain_id, encode_vote_sign_bytes(vote_type, height, round_, block_id))
    return Vote(vote_type, height, round_, block_id, key.address.raw, sig)


def _vote_order(vote: Vote) -> bytes:
    return vote.block_id if vote.block_id is not None else b""


@dataclass(frozen=True)
class DuplicateVoteEvidence:
    """Two signed votes by one validator for different blocks at one height, round and type."""

    vote_a: Vote
    vote_b: Vote

    @classmethod
    def of(cls, one: Vote, other: Vote) -> DuplicateVoteEvidence:
        """Build evidence in its one canonical order (nil first, then by block id)."""
        a, b = sorted((one, other), key=_vote_order)
        return cls(a, b)

    def to_list(self) -> list[Any]:
        return [self.vote_a.to_list(), self.vote_b.to_list()]

    @classmethod
    def from_list(cls, fields: Any) -> DuplicateVoteEvidence:
        f = _list(fields, 2, "evidence")
        return cls(Vote.from_list(f[0]), Vote.from_list(f[1]))

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    @cached_property
    def evidence_id(self) -> bytes:
        return sha256(encode(self.to_list()))

    @property
    def offence_id(self) -> bytes:
        """One offence (validator, height) is punished once, however many vote pairs prove it."""
        return sha256(encode(["equivocation", self.vote_a.validator, self.vote_a.height]))

    def check_shape(self) -> None:
        """Raise `InvalidMessage` unless the two votes conflict (signatures are checked elsewhere)."""
        a, b = self.vote_a, self.vote_b
        _expect(a.validator == b.validator, "evidence votes are from different validators")
        _expect((a.vote_type, a.height, a.round) == (b.vote_type, b.height, b.round), "evidence votes are for different steps")
        _expect(a.block_id != b.block_id, "evidence votes are for the same block")
        _expect(_vote_order(a) < _vote_order(b), "evidence votes are not in canonical order")


@dataclass(frozen=True)
class CommitCertificate:
    """More than 2/3 of voting power precommitting one block at one round; stored with the block."""

    height: int
    round: int
    block_id: bytes
    signatures: tuple[tuple[bytes, bytes], ...]  # (validator address, precommit signature), sorted by address

    def to_list(self) -> list[Any]:
        return [self.height, self.round, self.block_id, [list(s) for s in self.signatures]]

    @classmethod
    def from_list(cls, fields: Any) -> CommitCertificate:
        f = _list(fields, 4, "certificate")
        _expect(isinstance(f[3], list), "signatures must be a list")
        sigs = []
        for item in f[3]:
            pair = _list(item, 2, "certificate signature")
            _expect(isinstance(pair[0], bytes) and len(pair[0]) == ADDRESS_SIZE, "signer must be a 20-byte address")
            _expect(isinstance(pair[1], bytes) and len(pair[1]) == SIGNATURE_SIZE, "signature must be 64 bytes")
            sigs.append((pair[0], pair[1]))
        _expect([s[0] for s in sigs] == sorted({s[0] for s in sigs}), "signers must be sorted and distinct")
        return cls(_uint(f[0], "height"), _uint(f[1], "round", MAX_ROUND), _hash(f[2], "block_id"), tuple(sigs))

    def votes(self) -> list[Vote]:
        return [Vote(PRECOMMIT, self.height, self.round, self.block_id, a, s) for a, s in self.signatures]


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: tuple[bytes, ...]
    evidence: tuple[DuplicateVoteEvidence, ...]
    proof: bytes  # the proof kind's result bytes (kind "matrix": the product matrix)
    last_commit: CommitCertificate | None  # the commit of block height - 1 (None at height 1)

    @property
    def block_id(self) -> bytes:
        return self.header.block_id

    @property
    def height(self) -> int:
        return self.header.height

    def to_list(self) -> list[Any]:
        last = None if self.last_commit is None else self.last_commit.to_list()
        return [self.header.to_list(), list(self.txs), [e.to_list() for e in self.evidence], self.proof, last]

    @classmethod
    def from_list(cls, fields: Any) -> Block:
        f = _list(fields, 5, "block")
        _expect(isinstance(f[1], list) and all(isinstance(t, bytes) for t in f[1]), "txs must be a list of bytes")
        _expect(isinstance(f[2], list), "evidence must be a list")
        _expect(isinstance(f[3], bytes), "proof must be bytes")
        last = None if f[4] is None else CommitCertificate.from_list(f[4])
        evidence = tuple(DuplicateVoteEvidence.from_list(e) for e in f[2])
        return cls(BlockHeader.from_list(f[0]), tuple(f[1]), evidence, f[3], last)

    @cached_property
    def size(self) -> int:
        return len(encode(self.to_list()))


def compute_tx_root(txs: tuple[bytes, ...]) -> bytes:
    return compute_merkle_root(list(txs))


def compute_evidence_root(evidence: tuple[DuplicateVoteEvidence, ...]) -> bytes:
    return compute_merkle_root([e.evidence_id for e in evidence])


def compute_last_commit_hash(certificate: CommitCertificate | None) -> bytes:
    return sha256(b"" if certificate is None else encode(certificate.to_list()))


@dataclass(frozen=True)
class Proposal:
    height: int
    round: int
    pol_round: int  # -1, or the round of the polka that made this block the proposer's valid value
    block: Block
    proposer: bytes  # address
    signature: bytes

    def to_list(self) -> list[Any]:
        return [self.height, self.round, self.pol_round, self.block.to_list(), self.proposer, self.signature]

    @classmethod
    def from_list(cls, fields: Any) -> Proposal:
        f = _list(fields, 6, "proposal")
        _expect(type(f[2]) is int and -1 <= f[2] < MAX_ROUND, "pol_round must be -1 or a round")
        _expect(isinstance(f[4], bytes) and len(f[4]) == ADDRESS_SIZE, "proposer must be a 20-byte address")
        _expect(isinstance(f[5], bytes) and len(f[5]) == SIGNATURE_SIZE, "signature must be 64 bytes")
        height, round_ = _uint(f[0], "height"), _uint(f[1], "round", MAX_ROUND)
        _expect(f[2] < round_, "pol_round must be below the round")
        block = Block.from_list(f[3])
        _expect(block.height == height, "proposal height differs from its block's height")
        return cls(height, round_, f[2], block, f[4], f[5])

    def signed_bytes(self) -> bytes:
        return encode_proposal_sign_bytes(self.height, self.round, self.pol_round, self.block.block_id)

    def verify(self, public_key: PublicKey, chain_id: str) -> None:
        public_key.verify("proposal", chain_id, self.signed_bytes(), self.signature)


def encode_proposal_sign_bytes(height: int, round_: int, pol_round: int, block_id: bytes) -> bytes:
    return encode([height, round_, pol_round, block_id])


def sign_proposal(key: PrivateKey, chain_id: str, round_: int, pol_round: int, block: Block) -> Proposal:
    sig = key.sign("proposal", chain_id, encode_proposal_sign_bytes(block.height, round_, pol_round, block.block_id))
    return Proposal(block.height, round_, pol_round, block, key.address.raw, sig)


@dataclass(frozen=True)
class WalLock:
    """WAL entry: we locked on `block` at `round` (written before the precommit that follows)."""

    height: int
    round: int
    block: Block


Message = Union[Proposal, Vote]
WalEntry = Union[Proposal, Vote, WalLock]

_TAGS = ("proposal", "vote")


def encode_message(message: Message) -> bytes:
    tag = "proposal" if isinstance(message, Proposal) else "vote"
    return encode([tag, message.to_list()])


def decode_message(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse wire bytes into a `Proposal` or `Vote`; raise `InvalidMessage` on anything else."""
    _expect(isinstance(data, bytes), "a message is bytes")
    _expect(len(data) <= max_bytes, f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        value = decode(data)
    except EncodingError as exc:
        raise InvalidMessage(f"undecodable message: {exc}") from None
    f = _list(value, 2, "message")
    _expect(isinstance(f[0], str) and f[0] in _TAGS, "unknown message tag")
    if f[0] == "vote":
        _expect(len(data) <= MAX_VOTE_BYTES, "vote message too large")
        return Vote.from_list(f[1])
    return Proposal.from_list(f[1])

