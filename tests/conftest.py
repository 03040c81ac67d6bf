"""Fixtures shared by every test folder."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _serving_http(home: Path) -> AsyncIterator[tuple[Any, str]]:
    """A real node in this process with its API on real uvicorn at 127.0.0.1, once it has a block."""
    import uvicorn

    from bcai.api import create_app
    from bcai.node import Node
    from bcai.node.config import ApiConfig

    node = Node(home)
    await node.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(node, ApiConfig(port=port)), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started or node.app.state.height < 1:
            await asyncio.sleep(0.02)
        yield node, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        await node.stop()


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (just now)."""
    return free_port()


@pytest.fixture
def serve_http() -> Callable[[Path], contextlib.AbstractAsyncContextManager[tuple[Any, str]]]:
    """`async with serve_http(home) as (node, url)`: a node whose API the SDK can reach."""
    return _serving_http
