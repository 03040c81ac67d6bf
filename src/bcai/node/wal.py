"""The consensus write-ahead log: what this node signed (or locked on) at the current height.

One append-only file. A record is `[4-byte big-endian length][payload][4-byte CRC-32]`; each
append is followed by `fsync` before `append` returns, so a vote is on disk before the
node can send it (the engine's `PersistWal` contract). A torn record at the end (the process
died mid-write: cut short, zero-filled, or failing its CRC) is dropped on load, since it was
never sent. A record failing its CRC with records after it is not a torn write: the later
records may be votes already sent, so `load` raises `StoreCorrupted` rather than drop them
(a node that forgot a vote could sign a conflicting one).

Only the current height matters to the engine, so the log is emptied (truncate + fsync)
right after a block is durably committed to the chain store; a crash between the two leaves
old-height entries that the engine ignores on replay.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from bcai.consensus import Block, Proposal, Vote, WalEntry, WalLock, decode_message, encode_message
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, StoreCorrupted

_MAX_RECORD = 64 << 20


def encode_wal_entry(entry: WalEntry) -> bytes:
    if isinstance(entry, WalLock):
        return encode(["lock", entry.height, entry.round, entry.block.to_list()])
    return encode(["msg", encode_message(entry)])


def decode_wal_entry(data: bytes) -> WalEntry:
    try:
        value = decode(data)
        if value[0] == "lock":
            return WalLock(value[1], value[2], Block.from_list(value[3]))
        if value[0] == "msg":
            message: Proposal | Vote = decode_message(value[1], _MAX_RECORD)
            return message
    except (BcaiError, IndexError, TypeError, KeyError):
        pass
    raise StoreCorrupted("a consensus WAL record does not decode")


class ConsensusWal:
    """The WAL file at `path` (created if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)

    def load(self) -> list[WalEntry]:
        """Every whole record, in order; a torn tail is cut off the file."""
        data = self.path.read_bytes()
        entries: list[WalEntry] = []
        pos = 0
        while pos + 4 <= len(data):
            size = int.from_bytes(data[pos:pos + 4], "big")
            end = pos + 4 + size + 4
            # torn: cut short, or zeros where the file grew but the write never landed
            if size > _MAX_RECORD or end > len(data) or not any(data[pos:]):
                break
            payload = data[pos + 4:pos + 4 + size]
            if int.from_bytes(data[end - 4:end], "big") != zlib.crc32(payload):
                if end == len(data):
                    break  # the last record, torn
                # records follow it: they may be votes we sent; dropping them could make us
                # sign a conflicting vote, so refuse to go on
                raise StoreCorrupted(f"consensus WAL record at byte {pos} fails its checksum, with records after it")
            entries.append(decode_wal_entry(payload))
            pos = end
        if pos != len(data):
            os.ftruncate(self._fd, pos)
            os.fsync(self._fd)
        return entries

    def append(self, entry: WalEntry) -> None:
        payload = encode_wal_entry(entry)
        os.write(self._fd, len(payload).to_bytes(4, "big") + payload + zlib.crc32(payload).to_bytes(4, "big"))
        os.fsync(self._fd)

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
