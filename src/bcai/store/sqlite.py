"""The SQLite chain store: WAL mode, one transaction per block.

Why WAL: readers (the API, block sync) never block the writer, and a commit is one append
to the log. `synchronous=FULL` fsyncs the log at every commit, so a committed block survives
a power cut as well as a crash (NORMAL would only survive process crashes). A commit is
`BEGIN IMMEDIATE` ... `COMMIT`: if the process dies anywhere in between, SQLite's rollback of
the unfinished transaction on the next open leaves exactly the earlier blocks.

A damaged file is refused, not half-used: opening runs SQLite's `quick_check` (every page
and b-tree read once: milliseconds for a devnet, about a second per GiB), and any SQLite
error later (a page damaged while running, a full disk, an I/O error) surfaces as
`StoreCorrupted` or `StoreError` naming the file, never as a bare `sqlite3` exception.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bcai.errors import BlockNotFound, StoreCorrupted, StoreError
from bcai.store.base import ChainStore, StoredBlock, StoredTx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, data BLOB NOT NULL, state_root BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
"""


class SqliteChainStore(ChainStore):
    """Blocks, transactions and state in one SQLite file (`path`)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", check: bool = True) -> None:
        """Open (or create) the store at `path`; `check` runs `quick_check` first."""
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous is FULL, NORMAL or EXTRA")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open chain store {path}: {exc}") from None
        try:
            with self._errors():
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                if check:
                    problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
                    if problems != ["ok"]:
                        raise StoreCorrupted(f"chain store {path} is damaged: {'; '.join(problems).replace(chr(10), ' ')[:500]} "
                                             "(restore it from a backup, or move the data directory away to "
                                             "sync the chain from peers)")
                self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's exceptions into the store's: a damaged file is `StoreCorrupted`."""
        try:
            yield
        except sqlite3.OperationalError as exc:  # full disk, I/O error, locked
            raise StoreError(f"chain store {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed", "file is not a database"
            raise StoreCorrupted(f"chain store {self.path} is damaged: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def get_height(self) -> int:
        with self._errors():
            row = self._db.execute("SELECT value FROM meta WHERE name = 'height'").fetchone()
        return -1 if row is None else int.from_bytes(row[0], "big")

    def _write(self, block: StoredBlock | None, txs: list[StoredTx], changes: dict[bytes, bytes | None],
               height: int, root: bytes) -> None:
        db = self._db
        with self._errors():
            self._write_transaction(db, block, txs, changes, height, root)

    @staticmethod
    def _write_transaction(db: sqlite3.Connection, block: StoredBlock | None, txs: list[StoredTx],
                           changes: dict[bytes, bytes | None], height: int, root: bytes) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            if block is not None:
                db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)", (block.height, block.hash, block.data,
                                                                       block.state_root))
            db.executemany("INSERT OR REPLACE INTO txs VALUES (?, ?, ?, ?)",
                           [(t.hash, t.height, t.index, t.data) for t in txs])
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)",
                           [(k, v) for k, v in changes.items() if v is not None])
            db.executemany("DELETE FROM state WHERE key = ?", [(k,) for k, v in changes.items() if v is None])
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [("height", height.to_bytes(8, "big")), ("state_root", root)])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT may have ended it already
                db.execute("ROLLBACK")
            raise

    def _read_state(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        with self._errors():
            rows = self._db.execute("SELECT key, value FROM state").fetchall()
            root = self._db.execute("SELECT value FROM meta WHERE name = 'state_root'").fetchone()
        if root is None:
            raise BlockNotFound("the store holds no state yet")
        return [(bytes(k), bytes(v)) for k, v in rows], bytes(root[0])

    def _block(self, where: str, arg: object) -> StoredBlock:
        with self._errors():
            row = self._db.execute(f"SELECT height, hash, data, state_root FROM blocks WHERE {where} = ?",
                                   (arg,)).fetchone()
        if row is None:
            raise BlockNotFound(f"no block with {where} {arg!r}")
        return StoredBlock(row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]))

    def get_block(self, height: int) -> StoredBlock:
        return self._block("height", height)

    def get_block_by_hash(self, block_hash: bytes) -> StoredBlock:
        return self._block("hash", block_hash)

    def get_tx(self, tx_hash: bytes) -> StoredTx:
        with self._errors():
            row = self._db.execute("SELECT hash, height, idx, data FROM txs WHERE hash = ?", (tx_hash,)).fetchone()
        if row is None:
            raise BlockNotFound(f"no transaction {tx_hash.hex()}")
        return StoredTx(bytes(row[0]), row[1], row[2], bytes(row[3]))
