"""Persistence (a shell: disk I/O lives here, never in the ledger core).

- `base.py`: `ChainStore` (the contract: one atomic commit per block, `load_state` checked
  against the stored root), `StoredBlock`, `StoredTx`.
- `sqlite.py`: `SqliteChainStore`, SQLite in WAL mode (blocks, transactions, state).
- `memory.py`: `MemoryChainStore`, the in-memory reference sharing the same tests.
- `content.py`: the content store: immutable blobs addressed by CID (`ContentStore`, on
  disk `FileContentStore`, in memory `MemoryContentStore`); every read is verified
  against its CID.
"""

from bcai.store.base import ChainStore, StoredBlock, StoredTx
from bcai.store.content import ContentStore, FileContentStore, MemoryContentStore
from bcai.store.memory import MemoryChainStore
from bcai.store.sqlite import SqliteChainStore

__all__ = [
    "ChainStore", "ContentStore", "FileContentStore", "MemoryChainStore", "MemoryContentStore",
    "SqliteChainStore", "StoredBlock", "StoredTx",
]
