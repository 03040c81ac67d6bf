"""Hostile clients against the API as `bcai node run` serves it (uvicorn with
`bcai.api.server.create_server_config`, raw sockets): idle and trickling connections are
closed, a trickled body is refused with 408, a chunked body past the limit with 413 (and
the connection closed soon after), downloads are held at most `max_downloads` at a time and a client
that stops reading one is cut off without keeping its slot. Plus extreme values at the
routes (heights past int64, unicode addresses, wrong content types)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator

import contextlib
import httpx
import uvicorn

from bcai.api import create_app
from bcai.api.server import create_server_config
from bcai.crypto import Cid
from bcai.ledger import Genesis, compute_genesis_state
from bcai.node.config import ApiConfig
from bcai.node.service import NodeReads
from bcai.store import MemoryContentStore

from api_support import serving

LIMITS = ApiConfig(port=0, header_timeout_s=1, body_timeout_s=2, send_timeout_s=1, max_downloads=2,
                   max_body_bytes=1 << 20, rate_limit_per_s=10_000)
BIG = bytes(range(256)) * (64 << 10)  # 16 MiB


class ArtifactReads(NodeReads):
    """The node side of the artifact routes over an in-memory store, counting the
    downloads held at once."""

    def __init__(self, api: ApiConfig) -> None:
        self.app = SimpleNamespace(state=compute_genesis_state(Genesis("bcai-hostile")))  # type: ignore[assignment]
        self.content = MemoryContentStore()  # type: ignore[assignment]
        self.config = SimpleNamespace(api=api)  # type: ignore[assignment]
        self.host = SimpleNamespace(peers=[])  # type: ignore[assignment]
        self.held = 0
        self.most_held = 0


@contextlib.asynccontextmanager
async def real_server(api: ApiConfig = LIMITS) -> AsyncIterator[tuple[ArtifactReads, int]]:
    reads = ArtifactReads(api)
    app = create_app(reads, api)  # type: ignore[arg-type]
    server = uvicorn.Server(create_server_config(app, api))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield reads, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def closed_within(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """Everything the server sends until it closes the connection (fails past `timeout_s`);
    a reset (the server closed with our bytes unread) ends it too."""
    got = b""

    async def read_all() -> None:
        nonlocal got
        with contextlib.suppress(ConnectionError):
            while piece := await reader.read(65536):
                got += piece

    await asyncio.wait_for(read_all(), timeout_s)
    return got


async def open_request(port: int, header: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent the head of a `POST /artifacts` with `header`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /artifacts HTTP/1.1\r\nHost: node\r\n" + header + b"\r\n\r\n")
    return reader, writer


def test_idle_and_trickling_connections_are_closed() -> None:
    async def scenario() -> None:
        async with real_server() as (_, port):
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            assert await closed_within(idle_reader, 10) == b""  # sent nothing: closed, no answer
            assert time.monotonic() - started >= 0.9
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = b"GET /jobs HTTP/1.1\r\nHost: node\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
            started = time.monotonic()
            with contextlib.suppress(ConnectionError):
                for byte in request[:100]:  # a byte every 0.1 s: each resets uvicorn's own timer, not ours
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)
            assert await closed_within(reader, 10) == b""
            assert time.monotonic() - started < 9  # cut off before the 100 bytes went
            for w in (idle_writer, writer):
                w.close()
    asyncio.run(scenario())


def test_keep_alive_connections_still_serve_request_after_request() -> None:
    async def scenario() -> None:
        async with real_server() as (_, port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(3):
                    assert (await client.get("/jobs")).status_code == 200
                    await asyncio.sleep(0.5)  # within the header deadline: the same connection serves on
                assert (await client.get("/validators")).status_code == 200
    asyncio.run(scenario())


def test_invalid_trickled_body_gets_408_and_the_connection_closed() -> None:
    async def scenario() -> None:
        async with real_server() as (reads, port):
            reader, writer = await open_request(port, b"Content-Length: 100000")
            started = time.monotonic()

            async def trickle() -> None:
                with contextlib.suppress(ConnectionError):
                    for _ in range(200):  # a byte every 0.05 s: 10 s for 200 of the 100,000
                        writer.write(b"x")
                        await writer.drain()
                        await asyncio.sleep(0.05)

            trickling = asyncio.create_task(trickle())
            answer = await closed_within(reader, 10)
            trickling.cancel()
            assert answer.startswith(b"HTTP/1.1 408 ") and b"body_timeout" in answer
            assert 1.5 <= time.monotonic() - started < 8
            assert list(reads.content.cids()) == []
            writer.close()
    asyncio.run(scenario())


def test_invalid_chunked_body_past_the_limit_gets_413_without_content_length() -> None:
    async def scenario() -> None:
        async with real_server() as (reads, port):
            reader, writer = await open_request(port, b"Transfer-Encoding: chunked")
            piece = b"y" * (256 << 10)
            with contextlib.suppress(ConnectionError):
                for _ in range(8):  # 2 MiB in 256 KiB chunks, past the 1 MiB limit
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            answer = await closed_within(reader, 10)
            assert answer.startswith(b"HTTP/1.1 413 ") and b"body_too_large" in answer
            assert list(reads.content.cids()) == []
            writer.close()
    asyncio.run(scenario())


def test_many_concurrent_downloads_are_held_a_few_at_a_time() -> None:
    async def scenario() -> None:
        async with real_server() as (reads, port):
            cid = reads.content.put(BIG)
            real_get = reads.content.get

            def counting_get(wanted: Cid) -> bytes:
                reads.held += 1
                reads.most_held = max(reads.most_held, reads.held)
                try:
                    time.sleep(0.05)
                    return real_get(wanted)
                finally:
                    reads.held -= 1

            reads.content.get = counting_get  # type: ignore[method-assign]
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
                answers = await asyncio.gather(*(client.get(f"/artifacts/{cid}") for _ in range(12)))
                assert all(a.status_code == 200 and a.content == BIG for a in answers)
            assert reads.most_held <= LIMITS.max_downloads
    asyncio.run(scenario())


def test_invalid_stalled_download_is_cut_off_and_frees_its_slot() -> None:
    async def scenario() -> None:
        api = ApiConfig(port=0, send_timeout_s=1, max_downloads=1, rate_limit_per_s=10_000)
        async with real_server(api) as (reads, port):
            cid = reads.content.put(BIG)
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once: the server must wait
            stalled.setblocking(False)
            await asyncio.get_running_loop().sock_connect(stalled, ("127.0.0.1", port))
            stalled.send(f"GET /artifacts/{cid} HTTP/1.1\r\nHost: node\r\n\r\n".encode())
            await asyncio.sleep(0.5)  # the stalled client holds the only slot now
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                started = time.monotonic()
                answer = await client.get(f"/artifacts/{cid}")  # waits its turn, then gets it all
                assert answer.status_code == 200 and answer.content == BIG
                assert time.monotonic() - started < 20
            stalled.close()
    asyncio.run(scenario())


def test_invalid_extreme_values_at_the_routes(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (_, client):
            def code(response: httpx.Response) -> tuple[int, str]:
                return response.status_code, response.json()["error"]["code"]

            assert code(await client.get(f"/blocks/{2**63}")) == (400, "bad_height")  # one past int64
            assert code(await client.get(f"/blocks/{10**400}")) == (400, "bad_height")
            assert code(await client.get("/blocks/-9223372036854775809")) == (400, "bad_height")
            assert (await client.get(f"/blocks/{2**63 - 1}")).status_code == 404  # the largest: valid, absent
            for address in ("bcai" + "\u0661" * 40, "bcai" + "é" * 40, "bcaï" + "0" * 40, "\U0001F600" * 44):
                assert code(await client.get(f"/accounts/{address}")) == (400, "invalid_key")
            assert code(await client.get(f"/jobs/{'ab' * 32}/messages?after={10**30}")) == (404, "not_found")
            assert code(await client.get(f"/jobs/{'ab' * 32}/messages?after=-1")) == (400, "bad_index")
    asyncio.run(scenario())


def test_invalid_content_types_for_json_routes_get_415(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (node, client):
            raw = b"\x01\x02\x03"
            for path, body in (("/txs", b'{"tx": "00"}'), ("/txs/batch", b'{"txs": ["00"]}')):
                for content_type in ("application/octet-stream", "text/plain", "application/x-www-form-urlencoded", None):
                    headers: dict[str, Any] = {} if content_type is None else {"content-type": content_type}
                    response = await client.post(path, content=raw if content_type == "application/octet-stream" else body,
                                                 headers=headers)
                    assert response.status_code == 415, (path, content_type, response.text)
                    assert response.json()["error"]["code"] == "unsupported_media_type"
                ok = await client.post(path, content=body, headers={"content-type": "application/json; charset=utf-8"})
                assert ok.status_code in (200, 400), ok.text  # JSON, declared: on to the tx checks
            assert (await client.post("/txs", json={"tx": 5})).json()["error"]["code"] == "invalid_request"
            assert (await client.post("/txs", json=["00"])).json()["error"]["code"] == "invalid_request"
    asyncio.run(scenario())


def test_invalid_bodies_past_the_in_flight_budget_get_503_node_busy() -> None:
    """Request bodies held at once are bounded across clients: a slow upload holding part of
    the budget makes a new one that would pass it a 503 (declared or chunked); once the
    first is done there is room again."""
    async def scenario() -> None:
        api = ApiConfig(port=0, max_body_bytes=1 << 20, max_body_bytes_in_flight=3 << 19, body_timeout_s=30,
                        rate_limit_per_s=10_000)
        async with real_server(api) as (reads, port):
            held = bytes(range(256)) * 4096  # 1 MiB, sent all but its last byte
            reader, writer = await open_request(port, b"Content-Length: %d" % len(held))
            writer.write(held[:-1])
            await writer.drain()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    refused = await client.post("/artifacts", content=b"z" * (600 << 10))
                    if refused.status_code == 503:  # the held body has been read in by now
                        break
                assert refused.json()["error"]["code"] == "node_busy"

                async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
                    for _ in range(6):
                        yield b"w" * (100 << 10)

                refused = await client.post("/artifacts", content=chunks())
                assert (refused.status_code, refused.json()["error"]["code"]) == (503, "node_busy")
                writer.write(held[-1:])
                await writer.drain()
                answer = await closed_within_answer(reader)
                assert answer.startswith(b"HTTP/1.1 201 ")
                assert (await client.post("/artifacts", content=b"z" * (600 << 10))).status_code == 201
            assert reads.content.has(Cid.of(held))
            writer.close()
    asyncio.run(scenario())


async def closed_within_answer(reader: asyncio.StreamReader) -> bytes:
    """The head of the next answer on a kept-alive connection."""
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


def test_invalid_declared_upload_past_the_client_allowance_is_refused_before_its_body() -> None:
    async def scenario() -> None:
        api = ApiConfig(port=0, upload_client_bytes=100_000, body_timeout_s=30, rate_limit_per_s=10_000)
        async with real_server(api) as (reads, port):
            cid = Cid.of(b"q" * 200_000)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST /artifacts/{cid} HTTP/1.1\r\nHost: node\r\nContent-Length: 200000\r\n\r\n".encode())
            answer = await closed_within_answer(reader)  # no body sent: answered at once, not at the body timeout
            assert answer.startswith(b"HTTP/1.1 429 ")
            body = await asyncio.wait_for(reader.read(1000), 10)
            assert b"upload_quota" in body
            writer.close()
            held = b"h" * 150_000
            reads.content.put(held)  # held already: free, whatever the allowance
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.post(f"/artifacts/{Cid.of(held)}", content=held)).status_code == 201
    asyncio.run(scenario())
