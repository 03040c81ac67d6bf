"""`LedgerApplication` over the real ledger and an in-memory chain store, and the node's
chain spec and restart behaviour."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bcai.consensus import ConsensusParams, Engine, PRECOMMIT, Start, Genesis as ConsensusGenesis
from bcai.consensus import CommitBlock
from bcai.crypto import PrivateKey
from bcai.errors import BadNonce, ConfigError, InvalidBlock, TxAlreadyKnown, WrongChainId
from bcai.ledger import Transfer, compute_genesis_state, encode_tx
from bcai.node import Node, init_home, load_chain_spec
from bcai.node.application import NodeApplication
from bcai.node.chainspec import parse_consensus_params
from bcai.node.config import P2PConfig
from bcai.node.home import compute_local_params, make_genesis
from bcai.node.mempool import Mempool
from bcai.store import MemoryChainStore

CHAIN = "bcai-apptest"
V1, V2 = PrivateKey.from_label("v1"), PrivateKey.from_label("v2")
ALICE, BOB = PrivateKey.from_label("alice"), PrivateKey.from_label("bob")


def make_app() -> NodeApplication:
    genesis = make_genesis(CHAIN, [V1.public_key, V2.public_key], [(ALICE.address, 1000)])
    state = compute_genesis_state(genesis)
    store = MemoryChainStore()
    store.commit_genesis(state)
    params = compute_local_params(CHAIN)
    return NodeApplication(store.load_state(), store, Mempool(), params, ConsensusGenesis(0, b"\x00" * 32))


def transfer(nonce: int, amount: int = 10, chain: str = CHAIN) -> bytes:
    return encode_tx(ALICE, nonce, 1, chain, Transfer(BOB.address, amount))


def test_check_tx_chains_nonces_on_the_check_state() -> None:
    app = make_app()
    app.check_tx(transfer(0))
    app.check_tx(transfer(1))  # valid only after the first: checked against the check state
    assert len(app.pool) == 2
    assert app.build_payload(1, 1 << 20) == (transfer(0), transfer(1))


def test_invalid_check_tx_leaves_no_trace() -> None:
    app = make_app()
    root = app.check_state.root()
    with pytest.raises(WrongChainId):
        app.check_tx(transfer(0, chain="other"))
    with pytest.raises(BadNonce):
        app.check_tx(transfer(5))
    assert app.check_state.root() == root and len(app.pool) == 0
    app.check_tx(transfer(0))
    with pytest.raises(TxAlreadyKnown):
        app.check_tx(transfer(0))
    assert len(app.pool) == 1


def test_two_validators_commit_through_the_engine_and_store() -> None:
    """Drive two engines by hand: the block lands in the store with its txs; the mempool empties."""
    apps = [make_app(), make_app()]
    for app in apps:
        app.check_tx(transfer(0))
    params = apps[0].params
    genesis = ConsensusGenesis(0, b"\x00" * 32)
    engines = [Engine(params, genesis, app, key, app.tip) for app, key in zip(apps, (V1, V2))]
    queues = [list(engine.handle(Start(1000))) for engine in engines]
    from bcai.consensus import Broadcast, Received

    for _ in range(50):
        moved = False
        for i, engine in enumerate(engines):
            other = engines[1 - i]
            for action in [a for a in queues[i] if isinstance(a, Broadcast)]:
                queues[1 - i].extend(other.handle(Received(action.message, 1000)))
                moved = True
            queues[i] = [a for a in queues[i] if not isinstance(a, Broadcast)]
        if all(app.state.height >= 1 for app in apps) or not moved:
            break
    for app in apps:
        assert app.state.height >= 1
        assert app.store.get_height() == app.state.height
        assert app.store.get_tx(app.store.get_block(1).hash and app.last_txs[0].hash).height == 1
        assert len(app.pool) == 0
        assert app.state.get_account(BOB.address)[0] == 10
    assert apps[0].state.root() == apps[1].state.root()
    assert apps[0].store.get_block(1).hash == apps[1].store.get_block(1).hash


def test_block_txs_reuse_the_mempools_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block whose txs this node holds decodes none of them again (check and apply); one it
    does not hold is decoded from the block's bytes, and a tx with other bytes under no
    pooled hash is never taken from the pool."""
    from bcai.ledger import tx as tx_module

    apps = [make_app(), make_app()]
    for app in apps:
        app.check_tx(transfer(0))
    apps[0].check_tx(transfer(1))  # only the proposer holds this one
    params = apps[0].params
    genesis = ConsensusGenesis(0, b"\x00" * 32)
    engines = [Engine(params, genesis, app, key, app.tip) for app, key in zip(apps, (V1, V2))]
    decoded: list[bytes] = []
    real = tx_module.decode_tx
    monkeypatch.setattr("bcai.ledger.process.decode_tx", lambda data, limit: decoded.append(data) or real(data, limit))
    monkeypatch.setattr("bcai.node.application.decode_transaction",
                        lambda state, data: decoded.append(data) or real(data, state.params.max_tx_bytes))
    from bcai.consensus import Broadcast, Received

    queues = [list(engine.handle(Start(1000))) for engine in engines]
    for _ in range(50):
        for i, engine in enumerate(engines):
            for action in [a for a in queues[i] if isinstance(a, Broadcast)]:
                queues[1 - i].extend(engines[1 - i].handle(Received(action.message, 1000)))
            queues[i] = [a for a in queues[i] if not isinstance(a, Broadcast)]
        if all(app.state.height >= 1 for app in apps):
            break
    assert all(app.state.height >= 1 for app in apps)
    assert apps[0].state.get_account(BOB.address)[0] == apps[1].state.get_account(BOB.address)[0] == 20
    # the second node decoded transfer(1) from the block, once; transfer(0) never again
    assert transfer(0) not in decoded and decoded.count(transfer(1)) == 1, len(decoded)


def test_sole_validator_commits_one_block_per_engine_call() -> None:
    genesis = make_genesis(CHAIN, [V1.public_key], [(ALICE.address, 1000)])
    store = MemoryChainStore()
    store.commit_genesis(compute_genesis_state(genesis))
    app = NodeApplication(store.load_state(), store, Mempool(), compute_local_params(CHAIN),
                          ConsensusGenesis(0, b"\x00" * 32))
    engine = Engine(app.params, ConsensusGenesis(0, b"\x00" * 32), app, V1, app.tip)
    actions = engine.handle(Start(1000))
    assert [a for a in actions if isinstance(a, CommitBlock)][0].block.height == 1
    assert app.state.height == 1 and store.get_height() == 1


def test_invalid_consensus_params_are_refused() -> None:
    with pytest.raises(ConfigError):
        parse_consensus_params(CHAIN, {"no_such_field": 1})
    with pytest.raises(ConfigError):
        parse_consensus_params(CHAIN, {"matrix_n": "64"})
    with pytest.raises(ConfigError):
        parse_consensus_params(CHAIN, {"timeout_propose_ms": -1})
    with pytest.raises(ConfigError):
        parse_consensus_params(CHAIN, {"chain_id": "x"})
    assert parse_consensus_params(CHAIN, {"matrix_n": 32}).matrix_n == 32


def test_invalid_home_files_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "n"
    init_home(home, "n", chain_id=CHAIN, p2p=P2PConfig(port=0))
    with pytest.raises(ConfigError):
        init_home(home, "n", chain_id=CHAIN)  # already a node there
    (home / "consensus.json").write_text(json.dumps({"genesis_time_ms": "soon", "params": {}}))
    with pytest.raises(ConfigError):
        load_chain_spec(home)
    (home / "consensus.json").write_text("{not json")
    with pytest.raises(ConfigError):
        load_chain_spec(home)


def test_node_resumes_where_it_stopped(tmp_path: Path) -> None:
    home = tmp_path / "n"
    init_home(home, "n", chain_id=CHAIN, p2p=P2PConfig(port=0))

    async def run_until(height: int) -> int:
        node = Node(home)
        start_height = node.app.state.height
        await node.start()
        while node.app.state.height < height:
            await asyncio.sleep(0.01)
        await node.stop()
        return start_height

    first_start = asyncio.run(run_until(3))
    assert first_start == 0
    reopened = Node(home)
    resumed_at = reopened.app.state.height
    root = reopened.app.state.root()
    block_hash = reopened.store.get_block(resumed_at).hash
    reopened.close()
    assert resumed_at >= 3
    second_start = asyncio.run(run_until(resumed_at + 2))
    assert second_start == resumed_at
    again = Node(home)
    assert again.store.get_block(resumed_at).hash == block_hash
    assert again.app.state.height >= resumed_at + 2 and root != again.app.state.root()
    again.close()
