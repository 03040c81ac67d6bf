"""The engine's `Application`, backed by the real ledger (`bcai.ledger`).

What crosses the boundary:

- a block's transactions go to `process_block` as raw signed tx bytes;
- its duplicate-vote evidence (verified by the engine) becomes ledger `Misbehaviour`
  records, which slash and jail;
- the signers of the certificate it carries for its parent become
  `last_commit_signers` (downtime accounting);
- the validator set of a height is the ledger's set for that height (bonded stake, jailed
  excluded, changes in force two heights after the block that made them), and the evidence
  window is the ledger's (`get_evidence_max_age`: the window, never reaching below the
  offences the state pruned): the state keeps every set of the window,
  so each node answers both from its state alone. The per-node cache of sets only answers
  heights the state still holds: a restarted node (empty cache) and a long-running one
  must judge the same evidence alike.

`check_payload` runs the whole `process_block` on a copy of the state; `apply_block` then
adopts that copy instead of doing the work twice. An adopted state is never mutated again
(every later block works on a copy), which is what lets a simulator share one execution
among all its nodes (`SharedExecution`): nodes whose states have the same root that apply
the same block get the same resulting state, because the ledger is deterministic.
"""

from __future__ import annotations

from typing import Callable, Sequence

from bcai.consensus.messages import Block, CommitCertificate
from bcai.consensus.validators import Validator
from bcai.crypto import Address
from bcai.errors import BcaiError, UnknownEntity
from bcai.ledger import LedgerBlock, Misbehaviour, State, get_evidence_window, get_validator_set, process_block, process_tx
from bcai.ledger.process import SignatureCache, process_begin_block
from bcai.ledger.slashing import get_evidence_max_age
from bcai.ledger.staking import get_validator_set_start
from bcai.ledger.tx import SignedTx


class SharedExecution:
    """Results of `process_block` and validator-set reads, keyed by the state root they
    started from: one execution serves every simulated node in the same state."""

    def __init__(self) -> None:
        self.after: dict[tuple[bytes, bytes], State | BcaiError] = {}
        self.sets: dict[tuple[bytes, int], list[Validator]] = {}


class LedgerApplication:
    """One node's ledger state, its mempool, and the `Application` methods over them."""

    def __init__(self, state: State, shared: SharedExecution | None = None) -> None:
        self.state = state
        self._shared = shared
        self.mempool: dict[bytes, None] = {}  # raw tx bytes, in arrival order
        self._after: dict[bytes, State] = {}  # block id -> state after it (dry runs)
        self._sets: dict[int, list[Validator]] = {}  # final sets (height <= state height + 2) the state holds
        self.verified: SignatureCache | None = None  # a node's verified-signature cache, if it keeps one
        # a node's decoded copy of a block tx it already holds (its mempool's), if it keeps them
        self.decode_block_tx: Callable[[bytes], SignedTx] | None = None

    # --- Application -----------------------------------------------------------------

    def get_last_height(self) -> int:
        return int(self.state.height)

    def get_app_hash(self) -> bytes:
        return self.state.root()

    def get_evidence_max_age(self) -> int:
        return get_evidence_max_age(self.state)

    def get_validators(self, height: int) -> Sequence[Validator]:
        if height < get_validator_set_start(self.state):  # pruned from the state: unknown here too
            raise UnknownEntity(f"the validator set of height {height} is no longer kept")
        known = self._sets.get(height)
        if known is None:
            key = (self.state.root(), height)
            known = self._shared.sets.get(key) if self._shared is not None else None
            if known is None:
                known = [Validator(info.public_key, info.power) for info in get_validator_set(self.state, height)]
                if self._shared is not None:
                    self._shared.sets[key] = known
            if height <= self.state.height + 2:  # final: sets are recorded two heights ahead
                self._sets[height] = known
        return known

    def build_payload(self, height: int, max_bytes: int, draft: Block | None = None) -> tuple[bytes, ...]:
        scratch = self.get_payload_state(draft)
        chosen: list[bytes] = []
        used = 0
        for tx in list(self.mempool):
            if used + len(tx) > max_bytes:
                break
            try:
                process_tx(scratch, tx, self.verified)
            except BcaiError:
                del self.mempool[tx]  # invalid on top of the current state: drop it
                continue
            chosen.append(tx)
            used += len(tx)
        return tuple(chosen)

    def get_payload_state(self, draft: Block | None) -> State:
        """A scratch copy of the state to choose txs on: with `draft` (the block we propose,
        txs not chosen yet), after the part of it that runs before its txs (evidence slashes,
        downtime), so a tx those invalidate (an unbond of more than a slash left) is dropped
        instead of making our own block invalid round after round."""
        scratch = self.state.copy()
        if draft is not None:
            try:
                process_begin_block(scratch, compute_ledger_block(draft))
            except BcaiError:  # the block fails whatever txs it carries; check_payload says why
                return self.state.copy()
        return scratch

    def check_payload(self, block: Block) -> None:
        if block.block_id in self._after:
            return
        key = (self.state.root(), block.block_id)
        known = self._shared.after.get(key) if self._shared is not None else None
        if known is None:
            try:
                known = self.state.copy()
                process_block(known, compute_ledger_block(block), self.verified, self.decode_block_tx)
                known.root()
            except BcaiError as exc:
                known = exc
            if self._shared is not None:
                self._shared.after[key] = known
        if isinstance(known, BcaiError):
            raise known
        self._after[block.block_id] = known

    def apply_block(self, block: Block, certificate: CommitCertificate) -> bytes:
        after = self._after.pop(block.block_id, None)
        if after is None:
            after = self.state.copy()
            process_block(after, compute_ledger_block(block), self.verified, self.decode_block_tx)
        self.state = after
        self._after.clear()
        for tx in block.txs:
            self.mempool.pop(tx, None)
        # keep what the state holds, and no more than the window back (bounded memory)
        start = max(get_validator_set_start(self.state), block.height - get_evidence_window(self.state.params) - 2)
        for old in [h for h in self._sets if h < start]:
            del self._sets[old]
        return self.state.root()

    # --- the rest --------------------------------------------------------------------

    def add_tx(self, tx: bytes) -> None:
        self.mempool.setdefault(tx, None)


def compute_ledger_block(block: Block) -> LedgerBlock:
    """The ledger's view of a consensus block."""
    signers = () if block.last_commit is None else tuple(Address(a) for a, _ in block.last_commit.signatures)
    misbehaviour = tuple(
        Misbehaviour(Address(ev.validator), ev.height, "equivocation", ev.evidence_id) for ev in block.evidence
    )
    return LedgerBlock(block.height, Address(block.header.proposer), block.txs, signers, misbehaviour)
