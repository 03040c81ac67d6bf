"""Helpers of the API tests: a real single-validator node in this process (p2p on a free
port), served through the real API app over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator

import httpx

from bcai.api import create_app
from bcai.node import Node
from bcai.node.config import ApiConfig


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
