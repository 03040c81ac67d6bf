"""The REST API against a real in-process node: reads, tx submission, every rejection a 4xx
with a machine-readable code, body and rate limits, artifacts, metrics, OpenAPI, events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from bcai.api import create_app
from bcai.crypto import Cid, PrivateKey
from bcai.ledger import Transfer, encode_tx
from bcai.node import Node
from bcai.node.config import ApiConfig

from api_support import serving, wait_for_height


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def transfer_tx(node: Node, nonce: int | None = None, chain_id: str | None = None, amount: int = 5) -> bytes:
    key = node.key
    if nonce is None:
        nonce = node.app.check_state.get_account(key.address)[1]
    return encode_tx(key, nonce, 1, chain_id or node.spec.chain_id, Transfer(PrivateKey.from_label("bob").address, amount))


def test_reads(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home, min_height=2) as (node, client):
            status = (await client.get("/status")).json()
            assert status["chain_id"] == "bcai-apitest" and status["height"] >= 2 and status["validator"]
            first = (await client.get("/blocks/1")).json()
            assert first["height"] == 1 and len(first["hash"]) == 64
            second = (await client.get("/blocks/2")).json()
            assert second["prev_hash"] == first["hash"]
            latest = (await client.get("/blocks/latest")).json()
            assert latest["height"] >= 2
            validators = (await client.get("/validators")).json()
            assert [v["address"] for v in validators] == [str(node.key.address)]
            account = (await client.get(f"/accounts/{node.key.address}")).json()
            assert account["balance"] > 0 and "validator" in account
            assert (await client.get("/jobs")).json() == []
            assert isinstance((await client.get("/nodes")).json(), list)
            assert (await client.get("/params")).json()["ledger"]["min_fee"] == 1
            metrics = (await client.get("/metrics")).text
            assert "bcai_height" in metrics and "bcai_blocks_committed_total" in metrics
            spec = (await client.get("/openapi.json")).json()
            assert "/txs" in spec["paths"] and "/blocks/{height}" in spec["paths"]
    run(scenario())


def test_submit_tx_is_committed(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (node, client):
            before = (await client.get(f"/accounts/{PrivateKey.from_label('bob').address}")).json()["balance"]
            response = await client.post("/txs", json={"tx": transfer_tx(node).hex()})
            assert response.status_code == 202, response.text
            tx_hash = response.json()["hash"]
            for _ in range(500):
                view = (await client.get(f"/txs/{tx_hash}")).json()
                if view["status"] == "committed":
                    break
                await asyncio.sleep(0.02)
            assert view["status"] == "committed" and view["kind"] == "transfer" and view["body"]["amount"] == 5
            block = (await client.get(f"/blocks/{view['height']}")).json()
            assert tx_hash in block["txs"]
            after = (await client.get(f"/accounts/{PrivateKey.from_label('bob').address}")).json()["balance"]
            assert after == before + 5
    run(scenario())


def test_invalid_txs_are_rejected_with_codes(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (node, client):
            assert_error(await client.post("/txs", json={"tx": "zz"}), 400, "bad_hex")
            assert_error(await client.post("/txs", json={"tx": " " + transfer_tx(node).hex()}), 400, "bad_hex")
            assert_error(await client.post("/txs", json={"tx": "00ff"}), 400, "tx_malformed")
            assert_error(await client.post("/txs", json={}), 422, "invalid_request")
            assert_error(await client.post("/txs", content=b"not json", headers={"content-type": "application/json"}),
                         422, "invalid_request")
            good = transfer_tx(node)
            forged = bytearray(good)
            forged[-10] ^= 1  # inside the signature
            assert_error(await client.post("/txs", json={"tx": bytes(forged).hex()}), 400, "tx_bad_signature")
            assert_error(await client.post("/txs", json={"tx": transfer_tx(node, chain_id="other-chain").hex()}),
                         400, "tx_wrong_chain")
            assert_error(await client.post("/txs", json={"tx": transfer_tx(node, amount=10**18).hex()}),
                         402, "insufficient_funds")
            assert (await client.post("/txs", json={"tx": good.hex()})).status_code == 202
            assert_error(await client.post("/txs", json={"tx": good.hex()}), 409, "tx_already_known")
            tx_hash = (await client.post("/txs", json={"tx": transfer_tx(node).hex()})).json()["hash"]
            while (await client.get(f"/txs/{tx_hash}")).json()["status"] != "committed":
                await asyncio.sleep(0.02)
            # replaying a committed tx: its nonce is used
            assert_error(await client.post("/txs", json={"tx": good.hex()}), 409, "tx_bad_nonce")
    run(scenario())


def test_invalid_reads_are_rejected_with_codes(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (_, client):
            assert_error(await client.get("/blocks/0"), 400, "bad_height")
            assert_error(await client.get(f"/blocks/{2**70}"), 400, "bad_height")
            assert_error(await client.get("/blocks/99999999"), 404, "not_found")
            assert_error(await client.get("/blocks/abc"), 422, "invalid_request")
            assert_error(await client.get("/txs/xyz"), 400, "bad_hex")
            assert_error(await client.get("/txs/00"), 400, "bad_hash")
            assert_error(await client.get("/txs/" + "00 " * 32), 400, "bad_hex")  # spaces are not hex
            assert_error(await client.get("/jobs/" + "0" * 63), 400, "bad_hex")
            assert_error(await client.get("/txs/" + "00" * 32), 404, "not_found")
            response = await client.get("/accounts/not-an-address")
            assert 400 <= response.status_code < 500 and response.json()["error"]["code"]
            assert_error(await client.get("/jobs/zz"), 400, "bad_hex")
            assert_error(await client.get("/jobs/" + "00" * 32), 404, "not_found")
            assert_error(await client.get("/no/such/route"), 404, "not_found")
            assert_error(await client.delete("/status"), 405, "method_not_allowed")
    run(scenario())


def test_artifacts_round_trip_and_invalid_cids(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (_, client):
            data = b"model weights" * 100
            cid = Cid.of(data)
            response = await client.post(f"/artifacts/{cid}", content=data)
            assert response.status_code == 201 and response.json()["cid"] == str(cid)
            assert (await client.get(f"/artifacts/{cid}")).content == data
            assert_error(await client.post(f"/artifacts/{cid}", content=b"other bytes"), 400, "invalid_cid")
            assert_error(await client.get("/artifacts/not-a-cid"), 400, "invalid_cid")
            assert_error(await client.get(f"/artifacts/{Cid.of(b'never stored')}"), 404, "not_found")
    run(scenario())


def test_invalid_oversized_body_gets_413(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home, ApiConfig(max_body_bytes=1000)) as (_, client):
            assert_error(await client.post("/txs", json={"tx": "00" * 1000}), 413, "body_too_large")

            async def chunks() -> Any:  # no Content-Length: the limit must hold on the bytes read
                for _ in range(10):
                    yield b"x" * 500

            assert_error(await client.post("/artifacts", content=chunks()), 413, "body_too_large")
            assert (await client.post("/artifacts", content=b"small")).status_code == 201
    run(scenario())


def test_invalid_request_rate_gets_429(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home, ApiConfig(rate_limit_per_s=2)) as (_, client):
            codes = [r.status_code for r in await asyncio.gather(*(client.get("/status") for _ in range(20)))]
            assert 200 in codes and 429 in codes
            assert_error(await client.get("/status"), 429, "rate_limited")
    run(scenario())


def test_websocket_events_get_a_block(node_home: Path) -> None:
    """Drive the /events route through raw ASGI messages: accept, then a block event."""

    async def scenario() -> None:
        async with serving(node_home) as (node, _):
            app = create_app(node)
            inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            inbox.put_nowait({"type": "websocket.connect"})
            sent: list[dict[str, Any]] = []
            got_block = asyncio.Event()

            async def receive() -> dict[str, Any]:
                return await inbox.get()

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)
                if message["type"] == "websocket.send" and json.loads(message["text"])["type"] == "block":
                    got_block.set()

            scope = {"type": "websocket", "path": "/events", "raw_path": b"/events", "query_string": b"",
                     "headers": [], "scheme": "ws", "server": ("node", 80), "client": ("127.0.0.1", 1),
                     "root_path": "", "subprotocols": [], "asgi": {"version": "3.0"}}
            task = asyncio.create_task(app(scope, receive, send))
            await asyncio.wait_for(got_block.wait(), 30)
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert sent[0]["type"] == "websocket.accept"
            event = json.loads(next(m for m in sent if m["type"] == "websocket.send")["text"])
            assert event["type"] == "block" and event["height"] >= 1 and len(event["hash"]) == 64
            assert not node._subscribers  # unsubscribed on disconnect
    run(scenario())
