"""Helpers of the API tests: a real single-validator node in this process (p2p on a free
port), served through the real API app over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import AsyncIterator

import httpx

from bcai.api import create_app
from bcai.crypto import PrivateKey
from bcai.node import Node
from bcai.node.config import ApiConfig
from bcai.p2p import ContentExchange, Host, HostConfig, TcpTransport
from bcai.store import MemoryContentStore


@contextlib.asynccontextmanager
async def serving(home: Path, api: ApiConfig = ApiConfig(), min_height: int = 1) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    node = Node(home)
    await node.start()
    app = create_app(node, api)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
            await wait_for_height(node, min_height)
            yield node, client
    finally:
        await node.stop()


async def wait_for_height(node: Node, height: int, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while node.app.state.height < height:
        assert loop.time() < deadline, f"node stuck at height {node.app.state.height}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def connected_peer(node: Node, holding: tuple[bytes, ...] = ()) -> AsyncIterator[Host]:
    """A peer connected to `node` that serves `holding` (and nothing else) by CID."""
    peer = Host(PrivateKey.from_label("artifact-peer"), TcpTransport(), HostConfig(network_id="bcai-apitest"))
    await peer.start("127.0.0.1:0")
    served = ContentExchange(peer, MemoryContentStore())
    for data in holding:
        served.store.put(data)
    try:
        await peer.connect(node.host.address, node.host.node_id)
        while not node.host.peers:
            await asyncio.sleep(0.01)
        yield peer
    finally:
        await peer.stop()


def get_documented_error_codes() -> dict[int, set[str]]:
    """docs/api.md's error table (section "## Errors"): status -> the codes it lists."""
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d{3}) \| (.*) \|$", section, re.MULTILINE)
    return {int(status): set(re.findall(r"`([a-z_]+)`", codes)) for status, codes in rows}
