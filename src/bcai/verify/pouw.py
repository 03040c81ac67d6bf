"""Proof of useful work: the header hash rule and the registry of proof kinds.

Every block header names a proof kind, a `task_id`, a `model_hash` (the hash of the
work's result) and a `nonce`. Two things must hold:

1. the proof kind's own `verify` accepts the result for the task the chain assigns at
   that height (kind (a), `freivalds.py`: a matrix product checked with Freivalds'
   algorithm; kind (b), a training step checked by replay, is registered by the issue
   that builds it);
2. the work hash `H(prev_hash, tx_root, model_hash, nonce)` is below the header's target.

Because `model_hash` is inside the work hash, the nonce is bound to the result and to the
block's transactions: a nonce found for one result or one payload is worthless for any
other. Because the task is derived from the previous block hash and the height, it cannot
be computed before the previous block exists, and a task for another height is stale or
future-dated and rejected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from bcai.crypto import sha256
from bcai.encoding import encode
from bcai.errors import InvalidProof, UnknownProofKind

MAX_TARGET = 2**64 - 1  # a target is compared with the first 8 bytes of the work hash


@dataclass(frozen=True, slots=True)
class WorkContext:
    """What the chain fixes about the work of one block before it is done."""

    prev_hash: bytes
    height: int
    matrix_n: int  # size of the matrix task (governable)
    freivalds_k: int  # number of Freivalds vectors


@dataclass(frozen=True, slots=True)
class WorkResult:
    """What a prover produces: the task it solved, the result's hash and the result bytes."""

    task_id: bytes
    model_hash: bytes
    proof: bytes


def compute_work_hash(prev_hash: bytes, tx_root: bytes, model_hash: bytes, nonce: int) -> bytes:
    """H(prev_hash, tx_root, model_hash, nonce): the hash that must be below the target."""
    return sha256(encode(["bcai/pouw/work", prev_hash, tx_root, model_hash, nonce]))


def is_below_target(work_hash: bytes, target: int) -> bool:
    return int.from_bytes(work_hash[:8], "big") < target


def compute_nonce(prev_hash: bytes, tx_root: bytes, model_hash: bytes, target: int, start: int = 0) -> int:
    """The first nonce from `start` whose work hash is below `target` (expected 2^64/target tries)."""
    nonce = None
    while nonce is None:
        nonce = compute_nonce_within(prev_hash, tx_root, model_hash, target, start, 1 << 16)
        start += 1 << 16
    return nonce


def compute_nonce_within(prev_hash: bytes, tx_root: bytes, model_hash: bytes, target: int, start: int,
                         tries: int) -> int | None:
    """The first nonce in `start .. start + tries - 1` whose work hash is below `target`, or
    None: a search cut into slices (a node's event loop runs between two) finds the same
    nonce as one `compute_nonce` call."""
    if not 0 < target <= MAX_TARGET:
        raise ValueError(f"target must be in 1..2^64-1, got {target}")
    for nonce in range(start, start + tries):
        if is_below_target(compute_work_hash(prev_hash, tx_root, model_hash, nonce), target):
            return nonce
    return None


class ProofKind(ABC):
    """One kind of useful work. Subclasses live in their own file and call `register_proof_kind`."""

    name: ClassVar[str]

    @abstractmethod
    def compute_task_id(self, ctx: WorkContext) -> bytes:
        """The id of the task the chain assigns at `ctx.height` after `ctx.prev_hash`."""

    @abstractmethod
    def solve(self, ctx: WorkContext) -> WorkResult:
        """Do the work (prover side)."""

    @abstractmethod
    def verify(self, ctx: WorkContext, task_id: bytes, model_hash: bytes, proof: bytes, work_hash: bytes) -> None:
        """Raise `InvalidProof` unless `proof` is a correct result of the task for `ctx`.

        `work_hash` binds the verifier's randomness to the header: it is only known once
        the result (through `model_hash`), the payload and the nonce are fixed.
        """


_REGISTRY: dict[str, ProofKind] = {}


def register_proof_kind(kind: ProofKind) -> None:
    if kind.name in _REGISTRY and type(_REGISTRY[kind.name]) is not type(kind):
        raise ValueError(f"proof kind {kind.name!r} is already registered")
    _REGISTRY[kind.name] = kind


def get_proof_kind(name: str) -> ProofKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownProofKind(f"no verifier registered for proof kind {name!r}") from None


def get_proof_kind_names() -> list[str]:
    return sorted(_REGISTRY)


def verify_work(
    ctx: WorkContext, kind_name: str, task_id: bytes, model_hash: bytes, nonce: int, tx_root: bytes, target: int, proof: bytes
) -> None:
    """Check a header's whole proof of useful work; raise `InvalidProof` (or `UnknownProofKind`)."""
    kind = get_proof_kind(kind_name)
    # the task must be the one assigned at this height after this parent: not stale, not future
    if task_id != kind.compute_task_id(ctx):
        raise InvalidProof("task_id is not the task assigned at this height (stale or future task)")
    # the nonce is bound to parent, payload and result; the hash must be below the target
    work_hash = compute_work_hash(ctx.prev_hash, tx_root, model_hash, nonce)
    if not is_below_target(work_hash, target):
        raise InvalidProof("work hash is not below the target")
    kind.verify(ctx, task_id, model_hash, proof, work_hash)
