"""A tx that leaves the mempool uncommitted: GET /txs/{hash} says so and why, and the SDK's
wait_for_tx raises TxDropped at once instead of waiting out its timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bcai.crypto import PrivateKey, sha256
from bcai.errors import TxDropped
from bcai.ledger import Transfer, encode_tx
from bcai.node.embedded import running_node
from bcai.sdk import Client

from test_api_batch import next_nonce

BOB = PrivateKey.from_label("bob").address


def test_a_dropped_tx_is_reported_with_its_reason_and_the_sdk_stops_waiting(node_home: Path) -> None:
    async def scenario() -> None:
        async with running_node(node_home) as (node, url):
            n = next_nonce(node)
            raw = encode_tx(node.key, n, 1, node.spec.chain_id, Transfer(BOB, 5))
            tx = node.app.decode_tx(raw)
            # admitted, then found invalid before any block took it (what a block's recheck does),
            # in one step of the event loop so no proposal can reap it in between
            node.mempool.add(tx, n)
            node.mempool.remove(tx.hash, "insufficient_funds", "balance 0 < 6")
            tx_hash = tx.hash.hex()
            with Client(url) as sdk:
                view = await asyncio.to_thread(sdk.tx, tx_hash)
                assert view == {"hash": tx_hash, "status": "dropped",
                                "error": {"code": "insufficient_funds", "message": "balance 0 < 6"}}
                started = time.monotonic()
                with pytest.raises(TxDropped, match="insufficient_funds: balance 0 < 6") as info:
                    await asyncio.to_thread(sdk.wait_for_tx, tx_hash, 30.0)
                assert info.value.reason == "insufficient_funds" and time.monotonic() - started < 10
                [again] = await asyncio.to_thread(sdk.submit_txs, [raw])  # valid after all: admitted anew
                assert again.ok and again.hash == tx_hash == sha256(raw).hex()
                assert (await asyncio.to_thread(sdk.wait_for_tx, tx_hash, 30.0))["status"] == "committed"
    asyncio.run(scenario())
