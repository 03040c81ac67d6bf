"""`LedgerApplication`: the consensus engine's `Application` over the real ledger, the
mempool and the chain store.

The simulator (`bcai.sim.SimApplication`) has its own small test application; this one runs
the real `bcai.ledger` state machine:

- `check_tx` admits a transaction to the mempool after running it against the *check
  state*, a copy of the committed state that also holds every admitted tx (so a sender's
  second tx is checked after its first). After each block the check state is rebuilt from
  the new committed state and the remaining mempool txs are re-checked (dropped when no
  longer valid).
- `build_payload` takes the mempool's fee-ordered, nonce-ordered txs and keeps those that
  still apply to a scratch copy of the committed state.
- `check_payload` runs a proposed block's txs on a scratch copy.
- `apply_block` runs `process_block` and, in the same call, commits the block, its txs, the
  changed state and the new chain tip to the store in one SQLite transaction. Doing the
  store write here (rather than on the engine's later `CommitBlock` action) matters: when
  catching up, one engine call applies many blocks, and the store must follow the state
  block by block.

Downtime accounting: consensus blocks do not (yet) carry the previous height's commit, and
the commit certificate a node saw for a block is not the same set of signatures on every
node, so it cannot feed a deterministic state transition. Until blocks carry their last
commit, every validator of height h - 1 is recorded as having signed (downtime slashing is
inactive; equivocation slashing works).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bcai.consensus import Block, ChainTip, CommitCertificate, ConsensusParams, Genesis as ConsensusGenesis
from bcai.consensus import Validator, ValidatorSet
from bcai.crypto import Address
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidBlock, InvalidTransaction, StoreCorrupted
from bcai.ledger import LedgerBlock, Misbehaviour, SignedTx, State, decode_transaction, get_validator_set, process_block, process_tx
from bcai.node.mempool import Mempool
from bcai.store import ChainStore


@dataclass(frozen=True)
class CommittedBlock:
    """A block as this node stored it: the block, its certificate and the tip after it."""

    block: Block
    certificate: CommitCertificate
    tip: ChainTip

    def to_bytes(self) -> bytes:
        t = self.tip
        tip = [t.height, t.block_id, t.time_ms, t.target, t.interval_ms, [list(p) for p in t.priorities]]
        return encode([self.block.to_list(), self.certificate.to_list(), tip])

    @classmethod
    def from_bytes(cls, data: bytes) -> CommittedBlock:
        try:
            block, cert, t = decode(data)
            tip = ChainTip(t[0], t[1], t[2], t[3], t[4], tuple((a, p) for a, p in t[5]))
            return cls(Block.from_list(block), CommitCertificate.from_list(cert), tip)
        except (BcaiError, ValueError, TypeError, IndexError) as exc:
            raise StoreCorrupted(f"a stored block does not decode: {exc}") from None


def decode_synced_block(data: bytes) -> tuple[Block, CommitCertificate]:
    """A block and certificate from a peer's block-sync answer (raise `InvalidBlock`)."""
    try:
        block, cert = decode(data)[:2]
        return Block.from_list(block), CommitCertificate.from_list(cert)
    except (BcaiError, ValueError, TypeError, IndexError) as exc:
        raise InvalidBlock(f"a synced block does not decode: {exc}") from None


class YieldAfterCommit(Exception):
    """Raised out of `apply_block`, after the block is stored, when this node alone holds more
    than 2/3 of the voting power (see `LedgerApplication.own_address`).

    The engine then decides every height inside one `handle` call without waiting for
    anyone, so the call would never return to the event loop. The node catches this,
    drops that engine and starts a fresh one from the stored tip (the restart path, with
    nothing signed yet at the new height), which gives the loop a turn per block.
    """


class LedgerApplication:
    """See the module docstring. `state` must be the store's committed state."""

    def __init__(self, state: State, store: ChainStore, mempool: Mempool, params: ConsensusParams,
                 genesis: ConsensusGenesis) -> None:
        self.state = state
        self.store = store
        self.mempool = mempool
        self.params = params
        self.check_state = state.copy()
        self.tip = self._load_tip(genesis)
        self.last_txs: list[SignedTx] = []  # the txs of the last applied block, for the node's events
        self.own_address: Address | None = None  # set by a validator node: see `YieldAfterCommit`
        self.pending_commit: tuple[Block, CommitCertificate] | None = None  # set with YieldAfterCommit

    def _load_tip(self, genesis: ConsensusGenesis) -> ChainTip:
        height = self.store.get_height()
        if height <= 0:
            return ChainTip.genesis(self.params, genesis)
        return CommittedBlock.from_bytes(self.store.get_block(height).data).tip

    # --- the Application protocol ----------------------------------------------------

    def get_last_height(self) -> int:
        return self.state.height

    def get_app_hash(self) -> bytes:
        return self.state.root()

    def get_validators(self, height: int) -> Sequence[Validator]:
        return [Validator(v.public_key, v.power) for v in get_validator_set(self.state, height)]

    def build_payload(self, height: int, max_bytes: int) -> tuple[bytes, ...]:
        max_bytes = min(max_bytes, self.state.params.max_block_bytes)
        candidates = self.mempool.reap(self.get_next_nonce, max_bytes, self.params.max_block_txs)
        scratch = self.state.copy()
        chosen = []
        for tx in candidates:
            try:
                process_tx(scratch, tx)
            except InvalidTransaction:
                self.mempool.remove(tx.hash)
                continue
            chosen.append(tx.raw)
        return tuple(chosen)

    def check_payload(self, height: int, txs: tuple[bytes, ...]) -> None:
        if sum(len(tx) for tx in txs) > self.state.params.max_block_bytes:
            raise InvalidBlock("block transactions exceed max_block_bytes")
        scratch = self.state.copy()
        for i, tx in enumerate(txs):
            try:
                process_tx(scratch, tx)
            except InvalidTransaction as exc:
                raise InvalidBlock(f"tx {i}: {exc.code}: {exc}") from None

    def apply_block(self, block: Block, certificate: CommitCertificate) -> bytes:
        height = block.height
        validators = ValidatorSet.from_priorities(self.get_validators(height), self.tip.get_priorities())
        signers: tuple[Address, ...] = ()
        if height >= 2:  # see the module docstring on downtime
            signers = tuple(v.address for v in get_validator_set(self.state, height - 1))
        misbehaviour = tuple(Misbehaviour(Address(ev.validator), ev.height, "equivocation", ev.evidence_id)
                             for ev in block.evidence)
        ledger_block = LedgerBlock(height, Address(block.header.proposer), block.txs, signers, misbehaviour)
        result = process_block(self.state, ledger_block)
        h = block.header
        self.tip = ChainTip(h.height, h.block_id, h.time_ms, h.target, h.time_ms - self.tip.time_ms,
                            tuple(sorted(validators.compute_priorities_after(certificate.round).items())))
        record = CommittedBlock(block, certificate, self.tip)
        self.store.commit_block(block.block_id, record.to_bytes(), list(zip(result.tx_hashes, block.txs)), self.state)
        self.last_txs = [decode_transaction(self.state, raw) for raw in block.txs]
        self._recheck_mempool(result.tx_hashes)
        if self.own_address is not None and self._is_sole_quorum(height + 1):
            self.pending_commit = (block, certificate)
            raise YieldAfterCommit(height)
        return result.state_root

    def _is_sole_quorum(self, height: int) -> bool:
        validators = get_validator_set(self.state, height)
        own = sum(v.power for v in validators if v.address == self.own_address)
        return own * 3 > sum(v.power for v in validators) * 2

    # --- mempool ----------------------------------------------------------------------

    def decode_tx(self, raw: bytes) -> SignedTx:
        return decode_transaction(self.state, raw)

    def get_next_nonce(self, address: Address) -> int:
        return self.state.get_account(address)[1]

    def check_tx(self, raw: bytes) -> SignedTx:
        """Check `raw` against the check state and admit it to the mempool (or raise)."""
        tx = decode_transaction(self.check_state, raw)
        kv = self.check_state.kv
        mark = kv.checkpoint()
        try:
            if tx.hash in self.mempool:
                self.mempool.add(tx, self.get_next_nonce(tx.sender_address))  # raises TxAlreadyKnown
            process_tx(self.check_state, tx)
            self.mempool.add(tx, self.get_next_nonce(tx.sender_address))
        except BaseException:
            kv.rollback(mark)
            raise
        kv.commit(mark)
        return tx

    def _recheck_mempool(self, committed: Sequence[bytes]) -> None:
        self.mempool.update(committed, self.get_next_nonce)
        self.check_state = self.state.copy()
        pending = sorted(self.mempool.pending(), key=lambda t: (t.sender_address.raw, t.nonce))
        for tx in pending:
            try:
                process_tx(self.check_state, tx)  # type: ignore[arg-type]
            except InvalidTransaction:
                self.mempool.remove(tx.hash)
