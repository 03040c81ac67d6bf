"""A node's tx gossip: admitted txs leave in batches, at most one flush per
`TX_GOSSIP_INTERVAL_S` however fast they arrive, and a received batch is checked off the
peer's connection (queued, then admitted by the inbox task)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bcai.crypto import PrivateKey
from bcai.encoding import decode, encode
from bcai.ledger import Transfer, encode_tx
from bcai.node import Node, init_home
from bcai.node.config import P2PConfig
from bcai.node.node import TX_GOSSIP_INTERVAL_S
from bcai.p2p import TOPIC_TXS, GossipMessage

BOB = PrivateKey.from_label("bob").address


def test_tx_gossip_is_batched_and_rate_bounded(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "gossip-test", ("validator",), "bcai-gossiptest", p2p=P2PConfig(port=0))

    async def scenario() -> None:
        node = Node(home)
        sent: list[tuple[float, list[bytes]]] = []

        async def publish(topic: str, data: bytes) -> None:
            if topic == TOPIC_TXS:
                sent.append((time.monotonic(), decode(data)))

        node.host.publish = publish  # type: ignore[method-assign]
        await node.start()
        try:
            nonce = node.app.check_state.get_account(node.key.address)[1]
            txs = [encode_tx(node.key, nonce + i, 1, node.spec.chain_id, Transfer(BOB, 1)) for i in range(60)]
            for raw in txs:  # one tx every 10 ms for 0.6 s
                await node.submit_tx(raw)
                await asyncio.sleep(0.01)
            await asyncio.sleep(2 * TX_GOSSIP_INTERVAL_S)
        finally:
            await node.stop()
        assert [raw for _, batch in sent for raw in batch] == txs  # every tx, once, in order
        assert 2 <= len(sent) <= 0.6 / TX_GOSSIP_INTERVAL_S + 3
        gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:])]
        assert min(gaps) >= TX_GOSSIP_INTERVAL_S * 0.9, gaps

    asyncio.run(scenario())


def received(node: Node, result: str) -> float:
    value = node.metrics.registry.get_sample_value("bcai_txs_received_total", {"source": "p2p", "result": result})
    return value or 0.0


def test_received_tx_batch_is_checked_by_the_inbox_task(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "inbox-test", ("validator",), "bcai-inboxtest", p2p=P2PConfig(port=0))

    async def scenario() -> None:
        node = Node(home)
        await node.start()
        try:
            nonce = node.app.check_state.get_account(node.key.address)[1]
            txs = [encode_tx(node.key, nonce + i, 1, node.spec.chain_id, Transfer(BOB, 1)) for i in range(5)]
            message = GossipMessage(TOPIC_TXS, encode([*txs, b"\x00\xff", txs[0]]), b"\x00" * 32, node.host.node_id)
            await node._on_tx_gossip(message)  # only queued: the peer's connection does not wait
            assert received(node, "ok") == 0
            for _ in range(200):
                if received(node, "ok") == 5:
                    break
                await asyncio.sleep(0.01)
            assert received(node, "ok") == 5 and received(node, "tx_malformed") == 1
            assert received(node, "tx_already_known") + received(node, "tx_bad_nonce") == 1
        finally:
            await node.stop()

    asyncio.run(scenario())
