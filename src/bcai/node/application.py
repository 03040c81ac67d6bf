"""`NodeApplication`: the consensus engine's `Application` for a real node.

It extends `bcai.consensus.ledger_app.LedgerApplication` (the ledger adapter the simulator
also uses: validator sets, `check_payload` as a dry run of `process_block` whose result
`apply_block` adopts) with what a node process adds:

- `check_tx` admits a transaction to the mempool after running it against the *check
  state*, a copy of the committed state that also holds every admitted tx (so a sender's
  second tx is checked after its first). After each block the check state is rebuilt from
  the new committed state and the remaining mempool txs are re-checked (dropped when no
  longer valid).
- `build_payload` takes the node mempool's fee-ordered, nonce-ordered txs and keeps those
  that still apply to a scratch copy of the committed state.
- `apply_block` adopts the new state and, in the same call, commits the block, its txs, the
  changed state entries and the new chain tip to the store in one SQLite transaction.
  Doing the store write here (rather than on the engine's later `CommitBlock` action)
  matters: when catching up, one engine call applies many blocks, and the store must
  follow the state block by block.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from bcai.consensus import Block, ChainTip, CommitCertificate, ConsensusParams, Genesis as ConsensusGenesis
from bcai.consensus import ValidatorSet
from bcai.consensus.ledger_app import LedgerApplication as CoreLedgerApplication
from bcai.crypto import Address
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidBlock, InvalidTransaction, StoreCorrupted
from bcai.ledger import SignedTx, State, decode_transaction, get_validator_set, process_tx
from bcai.node.mempool import Mempool
from bcai.node.sigcache import VerifiedSignatures
from bcai.store import ChainStore


MAX_BLOCK_DECODED = 50_000


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
            certificate = CommitCertificate.from_list(cert)
            tip = ChainTip(t[0], t[1], t[2], t[3], t[4], tuple((a, p) for a, p in t[5]), certificate)
            return cls(Block.from_list(block), certificate, tip)
        except (BcaiError, ValueError, TypeError, IndexError) as exc:
            raise StoreCorrupted(f"a stored block does not decode: {exc}") from None


def decode_synced_block(data: bytes) -> tuple[Block, CommitCertificate]:
    """A block and certificate from a peer's block-sync answer (raise `InvalidBlock`)."""
    try:
        block, cert = decode(data)[:2]
        return Block.from_list(block), CommitCertificate.from_list(cert)
    except (BcaiError, ValueError, TypeError, IndexError) as exc:
        raise InvalidBlock(f"a synced block does not decode: {exc}") from None


class NodeApplication(CoreLedgerApplication):
    """See the module docstring. `state` must be the store's committed state."""

    def __init__(self, state: State, store: ChainStore, mempool: Mempool, params: ConsensusParams,
                 genesis: ConsensusGenesis) -> None:
        super().__init__(state)
        self.store = store
        self.pool = mempool
        self.params = params
        self.verified = VerifiedSignatures()  # each tx signature is verified once on this node
        self.decode_block_tx = self._get_decoded  # and each tx decoded once: block txs reuse the mempool's copy
        self._block_decoded: dict[bytes, SignedTx] = {}  # block txs not in the pool, until the next commit
        self.check_state = state.copy()
        self.tip = self._load_tip(genesis)
        self.last_txs: list[SignedTx] = []  # the txs of the last applied block, for the node's events

    def _load_tip(self, genesis: ConsensusGenesis) -> ChainTip:
        height = self.store.get_height()
        if height <= 0:
            return ChainTip.genesis(self.params, genesis)
        return CommittedBlock.from_bytes(self.store.get_block(height).data).tip

    # --- the Application protocol ----------------------------------------------------

    def build_payload(self, height: int, max_bytes: int, draft: Block | None = None) -> tuple[bytes, ...]:
        max_bytes = min(max_bytes, self.state.params.max_block_bytes)
        candidates = self.pool.reap(self.get_next_nonce, max_bytes, self.params.max_block_txs)
        scratch = self.get_payload_state(draft)  # after the draft's evidence slashes and downtime
        chosen = []
        for tx in candidates:
            try:
                process_tx(scratch, tx, self.verified)  # type: ignore[arg-type]  # the pool holds SignedTx
            except InvalidTransaction as exc:
                self.pool.remove(tx.hash, exc.code, str(exc))
                continue
            chosen.append(tx.raw)
        return tuple(chosen)

    def apply_block(self, block: Block, certificate: CommitCertificate) -> bytes:
        height = block.height
        validators = ValidatorSet.from_priorities(self.get_validators(height), self.tip.get_priorities())
        root = super().apply_block(block, certificate)
        h = block.header
        self.tip = ChainTip(h.height, h.block_id, h.time_ms, h.target, h.time_ms - self.tip.time_ms,
                            tuple(sorted(validators.compute_priorities_after(certificate.round).items())), certificate)
        record = CommittedBlock(block, certificate, self.tip)
        self.last_txs = [self._get_decoded(raw) for raw in block.txs]
        self._block_decoded.clear()
        tx_hashes = [tx.hash for tx in self.last_txs]
        self.store.commit_block(block.block_id, record.to_bytes(), list(zip(tx_hashes, block.txs)), self.state)
        self._recheck_mempool(tx_hashes)
        return root

    # --- mempool ----------------------------------------------------------------------

    def _get_decoded(self, raw: bytes) -> SignedTx:
        """A block tx, decoded once on this node: the mempool's copy when it holds these very
        bytes, else the copy decoded for an earlier look at a block of this height."""
        tx_hash = hashlib.sha256(raw).digest()
        known = self.pool.get(tx_hash) or self._block_decoded.get(tx_hash)
        if known is not None and known.raw == raw:  # the same bytes: the same decoding
            return known  # type: ignore[return-value]  # the pool holds the SignedTx check_tx admitted
        tx = decode_transaction(self.state, raw)
        if len(self._block_decoded) >= MAX_BLOCK_DECODED:  # many rounds at one height: start over
            self._block_decoded.clear()
        self._block_decoded[tx_hash] = tx
        return tx

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
            if tx.hash in self.pool:
                self.pool.add(tx, self.get_next_nonce(tx.sender_address))  # raises TxAlreadyKnown
            process_tx(self.check_state, tx, self.verified)
            self.pool.add(tx, self.get_next_nonce(tx.sender_address))
        except BaseException:
            kv.rollback(mark)
            raise
        kv.commit(mark)
        return tx

    def _recheck_mempool(self, committed: Sequence[bytes]) -> None:
        self.pool.update(committed, self.get_next_nonce)
        self.check_state = self.state.copy()
        pending = sorted(self.pool.pending(), key=lambda t: (t.sender_address.raw, t.nonce))
        for tx in pending:
            try:
                process_tx(self.check_state, tx, self.verified)  # type: ignore[arg-type]
            except InvalidTransaction as exc:
                self.pool.remove(tx.hash, exc.code, str(exc))
