"""The in-memory chain store: the reference the SQLite store is tested against (same test class)."""

from __future__ import annotations

from bcai.errors import BlockNotFound
from bcai.store.base import ChainStore, StoredBlock, StoredTx


class MemoryChainStore(ChainStore):
    """Dicts instead of tables: for tests and the simulator (nothing survives the process)."""

    def __init__(self) -> None:
        self._height = -1
        self._root = b""
        self._state: dict[bytes, bytes] = {}
        self._blocks: dict[int, StoredBlock] = {}
        self._by_hash: dict[bytes, int] = {}
        self._txs: dict[bytes, StoredTx] = {}

    def get_height(self) -> int:
        return self._height

    def _write(self, block: StoredBlock | None, txs: list[StoredTx], changes: dict[bytes, bytes | None],
               height: int, root: bytes) -> None:
        if block is not None:
            self._blocks[block.height] = block
            self._by_hash[block.hash] = block.height
        for tx in txs:
            self._txs[tx.hash] = tx
        for key, value in changes.items():
            if value is None:
                self._state.pop(key, None)
            else:
                self._state[key] = value
        self._height, self._root = height, root

    def _read_state(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        if self._height == -1:
            raise BlockNotFound("the store holds no state yet")
        return list(self._state.items()), self._root

    def get_block(self, height: int) -> StoredBlock:
        if height not in self._blocks:
            raise BlockNotFound(f"no block at height {height}")
        return self._blocks[height]

    def get_block_by_hash(self, block_hash: bytes) -> StoredBlock:
        if block_hash not in self._by_hash:
            raise BlockNotFound(f"no block with hash {block_hash.hex()}")
        return self._blocks[self._by_hash[block_hash]]

    def get_tx(self, tx_hash: bytes) -> StoredTx:
        if tx_hash not in self._txs:
            raise BlockNotFound(f"no transaction {tx_hash.hex()}")
        return self._txs[tx_hash]
