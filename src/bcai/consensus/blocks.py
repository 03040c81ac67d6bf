"""Building and checking blocks (pure functions), and the chain tip the engine starts from.

`check_block` is the engine's `valid(v)`: every rule a proposed or synced block must meet,
each with a short comment, raising `BlockRejected` (or its leaf `InvalidProof`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

from bcai.consensus.config import ConsensusParams, Genesis
from bcai.consensus.difficulty import compute_next_target
from bcai.consensus.messages import (
    Block,
    BlockHeader,
    CommitCertificate,
    DuplicateVoteEvidence,
    compute_evidence_root,
    compute_last_commit_hash,
    compute_tx_root,
)
from bcai.consensus.validators import Validator
from bcai.errors import BcaiError, BlockRejected, InvalidCertificate, InvalidEvidence, InvalidSignature
from bcai.verify.pouw import (
    WorkContext, WorkResult, compute_nonce, compute_nonce_within, get_proof_kind, verify_work,
)


@dataclass(frozen=True)
class ChainTip:
    """What the engine needs to know about the last committed block."""

    height: int  # 0 before the first block
    block_id: bytes  # the genesis hash at height 0
    time_ms: int
    target: int  # the last block's PoUW target
    interval_ms: int  # the last block's time minus its parent's
    priorities: tuple[tuple[bytes, int], ...]  # proposer priorities at the start of height + 1
    last_commit: CommitCertificate | None  # the certificate of the last block (None at genesis)

    @classmethod
    def genesis(cls, params: ConsensusParams, genesis: Genesis) -> ChainTip:
        return cls(0, genesis.genesis_hash, genesis.time_ms, params.genesis_target, params.target_block_ms, (), None)

    def get_priorities(self) -> dict[bytes, int]:
        return dict(self.priorities)


def compute_expected_target(params: ConsensusParams, tip: ChainTip) -> int:
    """The target of the block after `tip`. Blocks 1 and 2 have the genesis target: block
    1's interval is the gap from the genesis time, which measures how long the chain took
    to start (hours, or negative for a genesis written ahead), not the work, and used to
    move block 2's target a whole 5% step on that alone."""
    if tip.height <= 1:
        return params.genesis_target
    return compute_next_target(tip.target, tip.interval_ms, params.target_block_ms, params.max_target_change_ppm)


def compute_work_context(params: ConsensusParams, tip: ChainTip) -> WorkContext:
    return WorkContext(tip.block_id, tip.height + 1, params.matrix_n, params.freivalds_k)


def build_block(
    params: ConsensusParams,
    tip: ChainTip,
    app_hash: bytes,
    proposer: bytes,
    txs: tuple[bytes, ...],
    evidence: tuple[DuplicateVoteEvidence, ...],
    now_ms: int,
    work: WorkResult,
    find_nonce: bool = True,
) -> Block:
    """Assemble a block and find its nonce (`work` is the solved task of this height);
    `find_nonce=False` leaves the nonce at 0 for a search in slices (`search_nonce`)."""
    tx_root = compute_tx_root(txs)
    target = compute_expected_target(params, tip)
    nonce = compute_nonce(tip.block_id, tx_root, work.model_hash, target) if find_nonce else 0
    header = BlockHeader(
        params.chain_id, tip.height + 1, max(now_ms, tip.time_ms + 1), tip.block_id, tx_root,
        compute_evidence_root(evidence), app_hash, compute_last_commit_hash(tip.last_commit), proposer,
        params.proof_kind, work.task_id, work.model_hash, nonce, target,
    )
    return Block(header, txs, evidence, work.proof, tip.last_commit)


def search_nonce(draft: Block, start: int, tries: int) -> Block | None:
    """`draft` with the first nonce in `start .. start + tries - 1` that meets its target, or
    None: a proposer can search in slices and still find what `build_block` finds."""
    h = draft.header
    nonce = compute_nonce_within(h.prev_hash, h.tx_root, h.model_hash, h.target, start, tries)
    if nonce is None:
        return None
    return replace(draft, header=replace(h, nonce=nonce))


def check_block(
    block: Block,
    params: ConsensusParams,
    tip: ChainTip,
    app_hash: bytes,
    now_ms: int | None,
    get_validators: Callable[[int], Mapping[bytes, Validator]],
    evidence_max_age: int,
    is_committed_offence: Callable[[bytes], bool],
    check_certificate: Callable[[CommitCertificate, int, bytes], None],
    check_payload: Callable[[Block], None],
) -> None:
    """Raise `BlockRejected` unless `block` may follow `tip`. `now_ms=None` skips the clock
    check (a block that already has a commit certificate). `evidence_max_age`: the
    application's evidence window in blocks."""
    h = block.header
    # it extends our chain on our chain id
    if h.chain_id != params.chain_id:
        raise BlockRejected(f"block for chain {h.chain_id!r}, we are {params.chain_id!r}")
    if h.height != tip.height + 1 or h.prev_hash != tip.block_id:
        raise BlockRejected(f"block {h.height} does not extend our tip at height {tip.height}")
    # the state root it builds on is ours
    if h.app_hash != app_hash:
        raise BlockRejected("app_hash differs from our state after the previous block")
    # time moves forward and not too far beyond our clock
    if h.time_ms <= tip.time_ms:
        raise BlockRejected("block time is not after its parent's")
    if now_ms is not None and h.time_ms > now_ms + params.max_clock_drift_ms:
        raise BlockRejected("block time is too far in the future")
    # it was built by a validator of this height
    validators = get_validators(h.height)
    if h.proposer not in validators:
        raise BlockRejected("block proposer is not a validator at this height")
    # size limits
    if len(block.txs) > params.max_block_txs or block.size > params.max_block_bytes:
        raise BlockRejected(f"block of {len(block.txs)} txs / {block.size} bytes exceeds the limits")
    if len(block.evidence) > params.max_evidence_per_block:
        raise BlockRejected("too much evidence in one block")
    # the header commits to the payload
    if h.tx_root != compute_tx_root(block.txs):
        raise BlockRejected("tx_root does not match the transactions")
    if h.evidence_root != compute_evidence_root(block.evidence):
        raise BlockRejected("evidence_root does not match the evidence")
    # it carries the commit of its parent (signers feed downtime accounting)
    if h.last_commit_hash != compute_last_commit_hash(block.last_commit):
        raise BlockRejected("last_commit_hash does not match the carried certificate")
    if tip.height == 0:
        if block.last_commit is not None:
            raise BlockRejected("block 1 carries no last commit")
    elif block.last_commit is None:
        raise BlockRejected("block carries no commit of its parent")
    else:
        check_certificate(block.last_commit, tip.height, tip.block_id)
    # the difficulty is the one the chain sets, and the useful work is done
    if h.target != compute_expected_target(params, tip):
        raise BlockRejected("target is not the one the difficulty rule sets")
    verify_work(
        compute_work_context(params, tip), h.proof_kind, h.task_id, h.model_hash, h.nonce, h.tx_root, h.target, block.proof
    )
    # every piece of evidence proves a double vote that was not punished yet
    seen: set[bytes] = set()
    for ev in block.evidence:
        try:
            check_evidence(ev, params, h.height, evidence_max_age, get_validators)
        except InvalidEvidence as exc:
            raise BlockRejected(f"bad evidence: {exc}") from None
        if ev.offence_id in seen or is_committed_offence(ev.offence_id):
            raise BlockRejected("evidence for an offence already punished or included twice")
        seen.add(ev.offence_id)
    # the application accepts the transactions (and the evidence, and the commit signers)
    try:
        check_payload(block)
    except BlockRejected:
        raise
    except BcaiError as exc:
        raise BlockRejected(f"payload rejected: {exc}") from None


def check_evidence(
    ev: DuplicateVoteEvidence,
    params: ConsensusParams,
    height: int,
    max_age: int,
    get_validators: Callable[[int], Mapping[bytes, Validator]],
) -> None:
    """Raise `InvalidEvidence` unless `ev` proves a double vote by a validator of its height,
    for a block at `height` whose evidence window is `max_age` blocks."""
    try:
        ev.check_shape()
    except BcaiError as exc:
        raise InvalidEvidence(str(exc)) from None
    # from a height of this chain, not after the block, inside the window
    if ev.height < 1:
        raise InvalidEvidence(f"evidence from height {ev.height}, before the first block")
    if ev.height > height:
        raise InvalidEvidence(f"evidence from height {ev.height}, after the block's height {height}")
    if ev.height < height - max_age:
        raise InvalidEvidence(f"evidence from height {ev.height} is too old at height {height} "
                              f"(the evidence window is {max_age} blocks)")
    # signed twice by a member of that height's set (kept by the application for the window)
    validators = get_validators(ev.height)
    if not validators:
        raise InvalidEvidence(f"the validator set of height {ev.height} is not known here")
    validator = validators.get(ev.validator)
    if validator is None:
        raise InvalidEvidence("evidence names a validator that was not in the set at that height")
    try:
        ev.vote_a.verify(validator.public_key, params.chain_id)
        ev.vote_b.verify(validator.public_key, params.chain_id)
    except InvalidSignature as exc:
        raise InvalidEvidence(f"evidence vote not signed by the validator: {exc}") from None


def check_certificate(
    certificate: CommitCertificate,
    height: int,
    block_id: bytes,
    validators: Mapping[bytes, Validator],
    chain_id: str,
    verified: dict[int, tuple[object, bytes]] | None = None,
) -> None:
    """Raise `InvalidCertificate` unless more than 2/3 of `validators`' power precommitted
    `block_id` at `height`, every signature valid.

    `verified` is the engine's optional identity cache: a signature's validity depends only on
    the signer's address (which fixes its key), so a certificate object whose signatures all
    verified once needs no second check; its power is still counted against `validators`.
    """
    if certificate.height != height or certificate.block_id != block_id:
        raise InvalidCertificate("certificate is for another block")
    hit = verified.get(id(certificate)) if verified is not None else None
    signatures_ok = hit is not None and hit[0] is certificate
    power = 0
    signers: set[bytes] = set()
    for vote in certificate.votes():
        # each signer counts once (decoding refuses repeats; an object handed to us may not)
        if vote.validator in signers:
            raise InvalidCertificate(f"certificate signed more than once by {vote.validator.hex()}")
        signers.add(vote.validator)
        validator = validators.get(vote.validator)
        if validator is None:
            raise InvalidCertificate("certificate signed by a non-validator")
        if not signatures_ok:
            try:
                vote.verify(validator.public_key, chain_id)
            except InvalidSignature as exc:
                raise InvalidCertificate(f"bad signature: {exc}") from None
        power += validator.power
    if verified is not None and not signatures_ok:
        verified[id(certificate)] = (certificate, b"certificate")
    total = sum(v.power for v in validators.values())
    if 3 * power <= 2 * total:
        raise InvalidCertificate(f"certificate holds {power} of {total} power, not more than 2/3")


def solve_work(params: ConsensusParams, tip: ChainTip) -> WorkResult:
    return get_proof_kind(params.proof_kind).solve(compute_work_context(params, tip))
