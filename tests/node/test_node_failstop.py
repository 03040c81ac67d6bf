"""A node whose disk fails stops itself: it does not serve on with a state ahead of its store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bcai.errors import StoreError
from bcai.node import Node, init_home
from bcai.node.config import P2PConfig


@pytest.fixture
def node_home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    init_home(home, "failstop", ("validator",), "bcai-failstop", p2p=P2PConfig(port=0))
    return home


async def wait_until(condition, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_invalid_failed_block_write_stops_the_node_and_a_restart_resumes(node_home: Path) -> None:
    async def scenario() -> int:
        node = Node(node_home)
        write = node.store._write

        def failing_write(block, *args):  # the disk fills up once height 3 is stored
            if block is not None and block.height > 3:
                raise StoreError("database or disk is full")
            write(block, *args)

        node.store._write = failing_write  # type: ignore[method-assign]
        await node.start()
        try:
            await wait_until(node._stopping.is_set)
            assert isinstance(node.fatal, StoreError)
            stored = node.store.get_height()
            assert stored == 3
            await asyncio.sleep(0.3)  # stopped for good: no block is committed after the failure
            assert node.store.get_height() == stored and node.last_commit_time_ms is not None
        finally:
            await node.stop()
        return stored

    stored = asyncio.run(scenario())

    async def restart() -> None:
        node = Node(node_home)
        assert node.app.state.height == stored  # resumes from what the store holds
        await node.start()
        try:
            await wait_until(lambda: node.app.state.height >= stored + 2)
            assert node.fatal is None
        finally:
            await node.stop()

    asyncio.run(restart())
