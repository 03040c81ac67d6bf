"""Persistence of the chain (a shell: disk I/O lives here, never in the ledger core).

- `base.py`: `ChainStore` (the contract: one atomic commit per block, `load_state` checked
  against the stored root), `StoredBlock`, `StoredTx`.
- `sqlite.py`: `SqliteChainStore`, SQLite in WAL mode (blocks, transactions, state).
- `memory.py`: `MemoryChainStore`, the in-memory reference sharing the same tests.
"""

from bcai.store.base import ChainStore, StoredBlock, StoredTx
from bcai.store.memory import MemoryChainStore
from bcai.store.sqlite import SqliteChainStore

__all__ = ["ChainStore", "MemoryChainStore", "SqliteChainStore", "StoredBlock", "StoredTx"]
