"""Chain stores: one test class for SQLite and the in-memory reference; reopen and crash safety."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from bcai.crypto import PrivateKey
from bcai.errors import BlockNotFound, StoreConflict, StoreCorrupted, StoreError
from bcai.ledger import (
    Bond, Genesis, LedgerBlock, Misbehaviour, Params, Transfer, Unbond, compute_genesis_state, encode_tx, get_validator_set, process_block,
)
from bcai.store import MemoryChainStore, SqliteChainStore

CHAIN = "bcai-store-test"
ALICE, BOB, VAL = (PrivateKey.from_label(n) for n in ("alice", "bob", "val1"))


def genesis_state(params=None):
    genesis = Genesis(CHAIN, params or Params(), ((ALICE.address, 10**9), (BOB.address, 10**9)), ((VAL.public_key, 1000),))
    return compute_genesis_state(genesis)


def apply_block(state, store, n_txs=3, misbehaviour=()):
    height = state.height + 1
    nonce = state.get_account(ALICE.address)[1]
    txs = tuple(encode_tx(ALICE, nonce + i, 1, CHAIN, Transfer(BOB.address, height)) for i in range(n_txs))
    signers = tuple(v.address for v in get_validator_set(state, height - 1)) if height > 1 else ()
    block = LedgerBlock(height, VAL.address, txs, signers, misbehaviour)
    result = process_block(state, block)
    data = b"".join(txs) + height.to_bytes(8, "big")
    store.commit_block(hashlib.sha256(data).digest(), data, list(zip(result.tx_hashes, txs)), state)
    return result


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path):
    s = SqliteChainStore(tmp_path / "chain.db") if request.param == "sqlite" else MemoryChainStore()
    yield s
    s.close()


class TestChainStore:
    def test_genesis_then_blocks_roundtrip(self, store):
        state = genesis_state()
        assert store.get_height() == -1
        store.commit_genesis(state)
        assert store.get_height() == 0
        results = [apply_block(state, store) for _ in range(5)]
        assert store.get_height() == 5
        loaded = store.load_state()
        assert loaded.root() == state.root() and loaded.dump() == state.dump()
        block = store.get_block(3)
        assert block.state_root == results[2].state_root
        assert store.get_block_by_hash(block.hash) == block
        tx = store.get_tx(results[4].tx_hashes[1])
        assert (tx.height, tx.index) == (5, 1)

    def test_invalid_out_of_order_commit(self, store):
        state = genesis_state()
        store.commit_genesis(state)
        with pytest.raises(StoreConflict):
            store.commit_genesis(state)
        apply_block(state, store)
        with pytest.raises(StoreConflict):
            store.commit_block(b"\x00" * 32, b"", [], state)  # same height again

    def test_invalid_missing_block_or_tx(self, store):
        with pytest.raises(BlockNotFound):
            store.load_state()
        store.commit_genesis(genesis_state())
        with pytest.raises(BlockNotFound):
            store.get_block(1)
        with pytest.raises(BlockNotFound):
            store.get_block_by_hash(b"\x01" * 32)
        with pytest.raises(BlockNotFound):
            store.get_tx(b"\x01" * 32)

    def test_deleted_keys_are_deleted(self, store):
        state = genesis_state(Params(unbonding_period=1))
        store.commit_genesis(state)
        # an unbonding entry is created in block 1 and deleted when it matures in block 2
        txs = (encode_tx(ALICE, 0, 1, CHAIN, Bond(10)), encode_tx(ALICE, 1, 1, CHAIN, Unbond(10)))
        result = process_block(state, LedgerBlock(1, VAL.address, txs))
        store.commit_block(b"\x02" * 32, b"b1", list(zip(result.tx_hashes, txs)), state)
        assert state.kv.keys_in_table(b"unbq/")
        assert store.load_state().dump() == state.dump()
        process_block(state, LedgerBlock(2, VAL.address, (), (VAL.address,)))
        store.commit_block(b"\x03" * 32, b"b2", [], state)
        assert not state.kv.keys_in_table(b"unbq/")
        assert store.load_state().dump() == state.dump()


def test_sqlite_reopen_gives_same_root(tmp_path):
    path = tmp_path / "chain.db"
    store = SqliteChainStore(path)
    state = genesis_state()
    store.commit_genesis(state)
    for _ in range(4):
        apply_block(state, store)
    store.close()
    reopened = SqliteChainStore(path)
    assert reopened.get_height() == 4
    assert reopened.load_state().root() == state.root()
    mode = reopened._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    reopened.close()


def test_sqlite_forgets_punished_offences_past_the_window_across_a_restart(tmp_path):
    # the ledger's `evid/` records leave the state (and so the store) once their offence is
    # outside the evidence window; a node restarted in between prunes exactly like one that
    # ran all along, and nothing pruned comes back from the store
    window = 5
    other = PrivateKey.from_label("val2")
    genesis = Genesis(CHAIN, Params(evidence_max_age=window), ((ALICE.address, 10**9),),
                      ((VAL.public_key, 1000), (other.public_key, 1000)))
    path = tmp_path / "chain.db"
    store = SqliteChainStore(path)
    state = compute_genesis_state(genesis)
    twin = compute_genesis_state(genesis)  # the node that never restarts
    store.commit_genesis(state)
    twin_store = MemoryChainStore()
    twin_store.commit_genesis(twin)
    offences = [Misbehaviour(other.address, 1, "equivocation", b"\x11" * 32)]
    for s, st in ((state, store), (twin, twin_store)):
        apply_block(s, st)
        apply_block(s, st, misbehaviour=tuple(offences))

    def records(db):
        return db._db.execute("SELECT count(*) FROM state WHERE substr(key, 1, 5) = ?", (b"evid/",)).fetchone()[0]

    assert records(store) == 1
    store.close()
    store = SqliteChainStore(path)  # restart inside the window
    state = store.load_state()
    for _ in range(window):
        apply_block(state, store)
        apply_block(twin, twin_store)
    assert records(store) == 0 and state.root() == twin.root()
    store.close()
    reopened = SqliteChainStore(path)
    assert reopened.load_state().dump() == twin.dump()
    reopened.close()


def test_invalid_tampered_state_is_detected(tmp_path):
    path = tmp_path / "chain.db"
    store = SqliteChainStore(path)
    store.commit_genesis(genesis_state())
    store._db.execute("UPDATE state SET value = x'00' WHERE key = (SELECT MIN(key) FROM state)")
    with pytest.raises(StoreCorrupted):
        store.load_state()
    store.close()


def write_chain(path, blocks=40):
    """A store with `blocks` blocks, checkpointed into the main file (no -wal beside it)."""
    store = SqliteChainStore(path)
    state = genesis_state()
    store.commit_genesis(state)
    for _ in range(blocks):
        apply_block(state, store, n_txs=20)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return state


def damage(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_invalid_damaged_pages_are_refused_at_open(tmp_path):
    path = tmp_path / "chain.db"
    write_chain(path)
    size = path.stat().st_size
    damage(path, size // 2, os.urandom(8192))  # garbage over pages in the middle of the b-trees
    with pytest.raises(StoreCorrupted, match="is damaged"):
        SqliteChainStore(path)


def test_invalid_not_a_database_is_refused(tmp_path):
    path = tmp_path / "chain.db"
    write_chain(path, blocks=2)
    damage(path, 0, b"definitely not SQLite")
    with pytest.raises(StoreCorrupted, match="not a database"):
        SqliteChainStore(path)


def test_invalid_damage_after_open_is_a_store_error_not_a_sqlite_one(tmp_path):
    path = tmp_path / "chain.db"
    write_chain(path)
    page = 4096
    damage(path, page, os.urandom(path.stat().st_size - page))  # every page but the schema's
    store = SqliteChainStore(path, check=False)  # as if the disk went bad while the node ran
    for read in (store.get_height, lambda: store.get_block(3), lambda: store.get_tx(bytes(32)), store.load_state):
        with pytest.raises(StoreCorrupted, match="is damaged"):
            read()
    store.close()


def test_invalid_failed_write_keeps_the_store_as_it_was(tmp_path):
    path = tmp_path / "chain.db"
    store = SqliteChainStore(path)
    state = genesis_state()
    store.commit_genesis(state)
    apply_block(state, store)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
    root = state.root()
    with pytest.raises(StoreError, match="full"):
        apply_block(state, store, n_txs=200)
    assert store.get_height() == 1 and not store._db.in_transaction
    assert store.get_block(1).state_root == root
    store.close()


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store_chain import apply_block, genesis_state
    from bcai.store import SqliteChainStore
    store = SqliteChainStore({path!r})
    state = genesis_state()
    store.commit_genesis(state)
    while True:
        result = apply_block(state, store, n_txs=50)
        print(state.height, result.state_root.hex(), flush=True)
    """
)


def run_writer_and_kill(code: str, enough) -> dict[int, str]:
    """Run a writer script, read its "height root" lines until `enough(lines)`, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    committed: dict[int, str] = {}
    try:
        for line in proc.stdout:
            if line.strip() == "mid":
                break
            height, root = line.split()
            committed[int(height)] = root
            if enough(committed):
                break
        proc.send_signal(signal.SIGKILL)  # mid-way through whatever it was writing
    finally:
        proc.kill()
        proc.wait()
    return committed


def test_sqlite_survives_sigkill_mid_write(tmp_path):
    path = str(tmp_path / "chain.db")
    committed = run_writer_and_kill(WRITER.format(tests=os.path.dirname(__file__), path=path),
                                    lambda done: len(done) >= 15)
    store = SqliteChainStore(path)
    height = store.get_height()
    assert height >= max(committed)  # nothing reported as committed was lost
    root = store.load_state().root()  # checked against the stored root
    assert root == store.get_block(height).state_root
    for h in committed:
        assert store.get_block(h).state_root.hex() == committed[h]
    store.close()


WRITER_PAUSED_MID_COMMIT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_store_chain import apply_block, genesis_state
    from bcai.store import SqliteChainStore

    class PauseBeforeCommit:
        # wraps the connection: at block 6, every row is written but COMMIT never runs
        def __init__(self, db, state):
            self.db, self.state = db, state
        def execute(self, sql, *args):
            if sql == "COMMIT" and self.state.height == 6:
                print("mid", flush=True)
                time.sleep(600)
            return self.db.execute(sql, *args)
        def executemany(self, sql, rows):
            return self.db.executemany(sql, rows)

    store = SqliteChainStore({path!r})
    state = genesis_state()
    store.commit_genesis(state)
    store._db = PauseBeforeCommit(store._db, state)
    while True:
        result = apply_block(state, store, n_txs=50)
        print(state.height, result.state_root.hex(), flush=True)
    """
)


def test_sqlite_kill_inside_a_block_transaction_keeps_exactly_the_earlier_blocks(tmp_path):
    path = str(tmp_path / "chain.db")
    code = WRITER_PAUSED_MID_COMMIT.format(tests=os.path.dirname(__file__), path=path)
    roots = run_writer_and_kill(code, lambda done: False)  # runs until the writer says "mid"
    assert sorted(roots) == [1, 2, 3, 4, 5]
    store = SqliteChainStore(path)
    assert store.get_height() == 5
    assert store.load_state().root().hex() == roots[5]
    with pytest.raises(BlockNotFound):
        store.get_block(6)
    store.close()
