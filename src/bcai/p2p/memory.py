"""In-memory transport: many nodes in one process, deterministic, no sockets.

A `MemoryNetwork` maps addresses to listeners; `dial` makes a pair of pipes. Each pipe has
a byte limit, so writers wait when the reader falls behind, as with TCP. Everything above
the byte stream (handshake, encryption, framing) is the same code the TCP transport runs.
"""

from __future__ import annotations

import asyncio
import itertools

from bcai.errors import ConnectionClosed
from bcai.p2p.transport import ByteStream, StreamHandler, Transport, split_host_port

_PIPE_LIMIT = 4 * 1024 * 1024


class _Pipe:
    """One direction: a bounded byte buffer with wake-ups for reader and writer."""

    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
        self.limit = limit
        self.closed = False
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()

    def close(self) -> None:
        self.closed = True
        self.readable.set()
        self.writable.set()


class MemoryStream(ByteStream):
    def __init__(self, inbound: _Pipe, outbound: _Pipe, remote_address: str) -> None:
        self._in = inbound
        self._out = outbound
        self.remote_address = remote_address

    async def read_exactly(self, n: int) -> bytearray:
        pipe = self._in
        while len(pipe.buffer) < n:
            if pipe.closed:
                raise ConnectionClosed(f"stream from {self.remote_address} ended")
            pipe.readable.clear()
            await pipe.readable.wait()
        data = pipe.buffer[:n]
        del pipe.buffer[:n]
        if len(pipe.buffer) < pipe.limit:
            pipe.writable.set()
        return data

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        pipe = self._out
        while len(pipe.buffer) >= pipe.limit and not pipe.closed:
            pipe.writable.clear()
            await pipe.writable.wait()
        if pipe.closed:
            raise ConnectionClosed(f"stream to {self.remote_address} is closed")
        pipe.buffer += data
        pipe.readable.set()
        await asyncio.sleep(0)  # let the reader run, as a socket write would

    def close(self) -> None:
        self._in.close()
        self._out.close()

    @property
    def is_closed(self) -> bool:
        return self._out.closed


class MemoryNetwork:
    """The shared address space of in-memory transports."""

    def __init__(self, pipe_limit: int = _PIPE_LIMIT) -> None:
        self.listeners: dict[str, StreamHandler] = {}
        self.pipe_limit = pipe_limit
        self._ports = itertools.count(10000)
        self._tasks: set[asyncio.Task[None]] = set()

    def transport(self, source: str = "127.0.0.1") -> MemoryTransport:
        """A transport whose dials come from host `source` (what listeners see as the
        caller's address, e.g. for per-host limits)."""
        return MemoryTransport(self, source)


class MemoryTransport(Transport):
    def __init__(self, network: MemoryNetwork, source: str = "127.0.0.1") -> None:
        self._network = network
        self._source = source
        self._bound: list[str] = []

    async def listen(self, address: str, on_stream: StreamHandler) -> str:
        host, port = split_host_port(address)
        if port == 0:
            port = next(self._network._ports)
        bound = f"{host}:{port}"
        if bound in self._network.listeners:
            raise ConnectionClosed(f"address {bound} is in use")
        self._network.listeners[bound] = on_stream
        self._bound.append(bound)
        return bound

    async def dial(self, address: str) -> ByteStream:
        handler = self._network.listeners.get(address)
        if handler is None:
            raise ConnectionClosed(f"nobody listens at {address}")
        a_to_b, b_to_a = _Pipe(self._network.pipe_limit), _Pipe(self._network.pipe_limit)
        ours = MemoryStream(b_to_a, a_to_b, address)
        theirs = MemoryStream(a_to_b, b_to_a, f"{self._source}:{next(self._network._ports)}")
        task = asyncio.get_running_loop().create_task(handler(theirs))
        self._network._tasks.add(task)
        task.add_done_callback(self._network._tasks.discard)
        return ours

    @property
    def connection_bytes(self) -> int:
        return 2 * self._network.pipe_limit  # the two pipes play the socket buffers

    async def close(self) -> None:
        for bound in self._bound:
            self._network.listeners.pop(bound, None)
        self._bound.clear()
