"""Persistence.

- `content.py`: the content store: immutable blobs addressed by CID (`ContentStore`,
  on disk `FileContentStore`, in memory `MemoryContentStore`); every read is verified
  against its CID. SQLite chain storage (blocks, state, consensus WAL) lives in its own
  files beside it.
"""

from bcai.store.content import ContentStore, FileContentStore, MemoryContentStore

__all__ = ["ContentStore", "FileContentStore", "MemoryContentStore"]
