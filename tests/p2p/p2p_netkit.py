"""Test kit for the p2p tests: a network of hosts on either transport (not a test file)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bcai.crypto import PrivateKey
from bcai.p2p import Host, HostConfig, MemoryNetwork, TcpTransport
from bcai.p2p.clock import Clock
from bcai.p2p.transport import ByteStream, Transport

TRANSPORTS = ["memory", "tcp"]


class Net:
    def __init__(self, kind: str, clock: Clock | None = None) -> None:
        self.kind = kind
        self.clock = clock
        self.memory = MemoryNetwork()
        self.hosts: list[Host] = []

    def transport(self) -> Transport:
        return self.memory.transport() if self.kind == "memory" else TcpTransport()

    async def host(self, label: str, config: HostConfig = HostConfig(), **kwargs: Any) -> Host:
        host = Host(PrivateKey.from_label(label), self.transport(), config, self.clock, **kwargs)
        await host.start("127.0.0.1:0")
        self.hosts.append(host)
        return host

    async def raw_dial(self, address: str) -> ByteStream:
        return await self.transport().dial(address)

    async def close(self) -> None:
        for host in self.hosts:
            await host.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds (polling the loop); fail the test after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def run(make: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    asyncio.run(asyncio.wait_for(make(), timeout))  # type: ignore[arg-type]


async def connect_all(hosts: list[Host], edges: list[tuple[int, int]]) -> None:
    for a, b in edges:
        await hosts[a].connect(hosts[b].address, hosts[b].node_id)
    await eventually(lambda: all(hosts[b].node_id in hosts[a].peers and hosts[a].node_id in hosts[b].peers for a, b in edges))
