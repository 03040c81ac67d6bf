"""`POST /txs/batch` and `Client.submit_txs` against a real in-process node: per-tx results
in order, one bad tx never refuses the others, the envelope's own limits, and the rate
limit counted per tx."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from bcai.crypto import PrivateKey
from bcai.ledger import Transfer, encode_tx
from bcai.node import Node
from bcai.node.config import ApiConfig
from bcai.node.embedded import running_node
from bcai.sdk import Client, NodeUnreachable

from api_support import serving

BOB = PrivateKey.from_label("bob").address


def transfer(node: Node, nonce: int, amount: int = 5, chain_id: str | None = None) -> bytes:
    return encode_tx(node.key, nonce, 1, chain_id or node.spec.chain_id, Transfer(BOB, amount))


def next_nonce(node: Node) -> int:
    return node.app.check_state.get_account(node.key.address)[1]


def codes(response: httpx.Response) -> list[str | None]:
    assert response.status_code == 200, response.text
    return [None if r["error"] is None else r["error"]["code"] for r in response.json()["results"]]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


async def wait_committed(client: httpx.AsyncClient, tx_hash: str) -> dict[str, Any]:
    for _ in range(1500):
        view = (await client.get(f"/txs/{tx_hash}")).json()
        if view.get("status") == "committed":
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"tx {tx_hash} not committed")


def test_batch_is_admitted_in_order_and_committed(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (node, client):
            before = (await client.get(f"/accounts/{BOB}")).json()["balance"]
            first = next_nonce(node)
            txs = [transfer(node, first + i, amount=i + 1) for i in range(20)]
            response = await client.post("/txs/batch", json={"txs": [tx.hex() for tx in txs]})
            assert codes(response) == [None] * 20
            hashes = [r["hash"] for r in response.json()["results"]]
            assert len(set(hashes)) == 20
            for tx_hash in hashes:
                await wait_committed(client, tx_hash)
            after = (await client.get(f"/accounts/{BOB}")).json()["balance"]
            assert after == before + sum(range(1, 21))
            assert codes(await client.post("/txs/batch", json={"txs": []})) == []
            assert "/txs/batch" in (await client.get("/openapi.json")).json()["paths"]
    asyncio.run(scenario())


def test_invalid_items_among_good_ones_get_their_own_codes(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (node, client):
            n = next_nonce(node)
            good0, good1, good2 = transfer(node, n), transfer(node, n + 1), transfer(node, n + 2)
            forged = bytearray(transfer(node, n + 1, amount=7))
            forged[-10] ^= 1  # inside the signature
            items = [good0.hex(), "zz", "00ff", bytes(forged).hex(), good1.hex(), good1.hex(),
                     transfer(node, n + 2, chain_id="other-chain").hex(), transfer(node, n + 2, amount=10**18).hex(),
                     good2.hex(), good0.hex()]
            response = await client.post("/txs/batch", json={"txs": items})
            assert codes(response) == [None, "bad_hex", "tx_malformed", "tx_bad_signature", None, "tx_already_known",
                                       "tx_wrong_chain", "insufficient_funds", None, "tx_already_known"]
            results = response.json()["results"]
            assert all(r["hash"] is None and r["error"]["message"] for r in results if r["error"])
            await wait_committed(client, results[8]["hash"])
            # a replay of committed txs: their nonces are used; a fresh one beside them is admitted
            fresh = transfer(node, n + 3).hex()
            response = await client.post("/txs/batch", json={"txs": [good0.hex(), fresh[:8] + " " + fresh[8:], fresh]})
            assert codes(response) == ["tx_bad_nonce", "bad_hex", None]  # hex with a space in it is not hex
    asyncio.run(scenario())


def test_invalid_batch_envelopes_are_refused_whole(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home, ApiConfig(max_batch_txs=3)) as (node, client):
            n = next_nonce(node)
            assert_error(await client.post("/txs/batch", json={"txs": "00ff"}), 422, "invalid_request")
            assert_error(await client.post("/txs/batch", json=[transfer(node, n).hex()]), 422, "invalid_request")
            assert_error(await client.post("/txs/batch", json={"txs": [transfer(node, n).hex(), 7]}),
                         422, "invalid_request")
            assert_error(await client.post("/txs/batch", json={}), 422, "invalid_request")
            assert_error(await client.post("/txs/batch", content=b"[not json",
                                           headers={"content-type": "application/json"}), 422, "invalid_request")
            too_many = [transfer(node, n + i).hex() for i in range(4)]
            assert_error(await client.post("/txs/batch", json={"txs": too_many}), 413, "batch_too_large")
            assert len(node.mempool) == 0  # nothing of a refused envelope was admitted
            assert codes(await client.post("/txs/batch", json={"txs": too_many[:3]})) == [None] * 3
    asyncio.run(scenario())


def test_invalid_oversized_batch_gets_413(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home, ApiConfig(max_body_bytes=2_000)) as (node, client):
            n = next_nonce(node)
            txs = [transfer(node, n + i).hex() for i in range(10)]
            assert_error(await client.post("/txs/batch", json={"txs": txs}), 413, "body_too_large")
            assert len(node.mempool) == 0
            assert codes(await client.post("/txs/batch", json={"txs": txs[:2]})) == [None, None]
    asyncio.run(scenario())


def test_invalid_batch_past_the_rate_limit_counts_each_tx(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home, ApiConfig(rate_limit_per_s=4)) as (node, client):
            await asyncio.sleep(0.3)  # the serving fixture's own reads refill
            n = next_nonce(node)
            raws = [transfer(node, n + i) for i in range(10)]
            response = await client.post("/txs/batch", json={"txs": [raw.hex() for raw in raws]})
            got = codes(response)
            admitted = got.count(None)
            assert 1 <= admitted <= 5 and got == [None] * admitted + ["rate_limited"] * (10 - admitted)
            # the admitted ones are known to the node (pending, or already in a block), the others not
            known = [node.get_tx(node.app.decode_tx(raw).hash) is not None for raw in raws]
            assert known == [True] * admitted + [False] * (10 - admitted)
            assert_error(await client.get("/status"), 429, "rate_limited")  # the batch used the tokens up
    asyncio.run(scenario())


def test_sdk_submit_txs_returns_one_outcome_per_tx(node_home: Path, unused_port: int) -> None:
    async def scenario() -> None:
        async with running_node(node_home) as (node, url):
            n = next_nonce(node)
            txs = [transfer(node, n + i) for i in range(6)] + [b"\x00\xff"]
            txs.insert(3, txs[2])  # a replay inside the batch
            with Client(url) as sdk:
                outcomes = await asyncio.to_thread(sdk.submit_txs, txs, 4)  # 8 txs: two requests of 4
                assert [o.error for o in outcomes] == [None] * 3 + ["tx_already_known"] + [None] * 3 + ["tx_malformed"]
                assert [o.ok for o in outcomes].count(True) == 6 and outcomes[3].hash == outcomes[2].hash
                for o in outcomes[:3] + outcomes[4:7]:  # accepted: each commits (it may leave the mempool at once)
                    await asyncio.to_thread(sdk.wait_for_tx, o.hash, 30.0)
                assert await asyncio.to_thread(sdk.submit_txs, []) == []
            with Client(f"http://127.0.0.1:{unused_port}") as nobody, pytest.raises(NodeUnreachable):
                await asyncio.to_thread(nobody.submit_txs, txs[:1])
    asyncio.run(scenario())
