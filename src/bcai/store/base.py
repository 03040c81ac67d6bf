"""`ChainStore`: what a node persists per committed block, and the contract every backend keeps.

One call per block, `commit_block`, writes atomically: the block bytes, its transactions, the
state entries the block changed (taken from the state's change set, so the cost grows with
the keys touched, not with the state) and the new state root. After a crash a store holds
exactly the blocks whose commit returned, and `load_state` rebuilds a state whose root
equals the root stored with the last block (checked; `StoreCorrupted` otherwise).

Blocks are opaque bytes with a 32-byte hash here: their format belongs to consensus.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from bcai.errors import StoreConflict, StoreCorrupted
from bcai.ledger import State


@dataclass(frozen=True, slots=True)
class StoredBlock:
    height: int
    hash: bytes
    data: bytes
    state_root: bytes  # the state root after applying this block


@dataclass(frozen=True, slots=True)
class StoredTx:
    hash: bytes
    height: int
    index: int
    data: bytes


class ChainStore(ABC):
    """Base class of chain stores (SQLite on disk, in memory for tests and simulations)."""

    @abstractmethod
    def get_height(self) -> int:
        """The height of the last committed block; 0 after genesis; -1 when empty."""

    @abstractmethod
    def _write(self, block: StoredBlock | None, txs: list[StoredTx], changes: dict[bytes, bytes | None],
               height: int, root: bytes) -> None:
        """Write one block (or the genesis state when `block` is None) atomically."""

    @abstractmethod
    def _read_state(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """All state entries and the stored root."""

    @abstractmethod
    def get_block(self, height: int) -> StoredBlock:
        """The block at `height` (`BlockNotFound` otherwise)."""

    @abstractmethod
    def get_block_by_hash(self, block_hash: bytes) -> StoredBlock:
        """The block with this hash (`BlockNotFound` otherwise)."""

    @abstractmethod
    def get_tx(self, tx_hash: bytes) -> StoredTx:
        """A committed transaction by hash (`BlockNotFound` otherwise)."""

    def close(self) -> None:
        """Release resources; the default has none."""

    def commit_genesis(self, state: State) -> None:
        """Persist the genesis state (height 0) into an empty store."""
        if self.get_height() != -1:
            raise StoreConflict("the store already holds a chain")
        self._write(None, [], state.kv.take_changes(), state.height, state.root())

    def commit_block(self, block_hash: bytes, block_data: bytes, txs: list[tuple[bytes, bytes]],
                     state: State) -> None:
        """Persist the block just applied to `state` (at `state.height`), with its txs and state changes.

        `txs` are (tx hash, tx bytes) in block order.
        """
        height = state.height
        if height != self.get_height() + 1:
            raise StoreConflict(f"block {height} does not follow stored height {self.get_height()}")
        if len(block_hash) != 32:
            raise ValueError("a block hash is 32 bytes")
        root = state.root()
        stored = [StoredTx(h, height, i, data) for i, (h, data) in enumerate(txs)]
        self._write(StoredBlock(height, block_hash, block_data, root), stored, state.kv.take_changes(), height, root)

    def load_state(self) -> State:
        """Rebuild the committed state and check it against the stored root."""
        entries, root = self._read_state()
        state = State()
        for key, value in entries:
            state.kv.set(key, value)
        state.kv.take_changes()
        if state.root() != root:
            raise StoreCorrupted("the stored state does not hash to the stored state root")
        return state
