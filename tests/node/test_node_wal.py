"""The consensus WAL: records survive reopening, a torn tail is cut, clear empties it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bcai.consensus import PRECOMMIT, PREVOTE, sign_vote
from bcai.crypto import PrivateKey
from bcai.errors import StoreCorrupted
from bcai.node.wal import ConsensusWal, decode_wal_entry

KEY = PrivateKey.from_label("wal")


def votes() -> list:
    return [sign_vote(KEY, "c", PREVOTE, 5, 0, b"\x01" * 32), sign_vote(KEY, "c", PRECOMMIT, 5, 0, None)]


def write_votes(path: Path) -> bytes:
    """A WAL at `path` holding `votes()`, closed; its bytes."""
    wal = ConsensusWal(path)
    for vote in votes():
        wal.append(vote)
    wal.close()
    return path.read_bytes()


def test_entries_survive_reopen(tmp_path: Path) -> None:
    write_votes(tmp_path / "wal")
    assert ConsensusWal(tmp_path / "wal").load() == votes()


def test_torn_tail_is_dropped_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    whole = write_votes(path)
    path.write_bytes(whole[:-3])  # the process died inside the second record
    wal = ConsensusWal(path)
    assert wal.load() == votes()[:1]
    assert len(path.read_bytes()) < len(whole) - 3  # the torn record is gone from the file
    wal.append(votes()[1])
    assert ConsensusWal(path).load() == votes()


def test_corrupt_checksum_stops_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = ConsensusWal(path)
    wal.append(votes()[0])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert ConsensusWal(path).load() == []


def test_clear_empties_the_log(tmp_path: Path) -> None:
    wal = ConsensusWal(tmp_path / "wal")
    wal.append(votes()[0])
    wal.clear()
    assert wal.load() == [] and (tmp_path / "wal").read_bytes() == b""


def test_invalid_record_bytes_raise(tmp_path: Path) -> None:
    with pytest.raises(StoreCorrupted):
        decode_wal_entry(b"\xa0")


def test_corrupt_record_with_records_after_it_refuses_to_load(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    data = bytearray(write_votes(path))
    data[10] ^= 0xFF  # inside the first record: the precommit after it may have been sent
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupted, match="checksum"):
        ConsensusWal(path).load()
    assert path.read_bytes() == bytes(data)  # nothing cut: the records after it are kept for inspection


def test_zero_filled_tail_is_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = ConsensusWal(path)
    wal.append(votes()[0])
    wal.close()
    whole = path.read_bytes()
    path.write_bytes(whole + bytes(300))  # the file grew, the record's bytes never landed
    assert ConsensusWal(path).load() == votes()[:1]
    assert path.read_bytes() == whole
