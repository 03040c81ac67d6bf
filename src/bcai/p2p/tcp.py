"""TCP transport: asyncio streams."""

from __future__ import annotations

import asyncio
import socket

from bcai.errors import ConnectionClosed
from bcai.p2p.transport import ByteStream, StreamHandler, Transport, split_host_port

# The stream reader's buffer limit: large enough that one 16 MiB frame read does not
# spin on small reads, small enough that a peer cannot make us buffer unboundedly.
_READ_LIMIT = 4 * 1024 * 1024


class TcpStream(ByteStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self.remote_address = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.transport.set_write_buffer_limits(high=4 * 1024 * 1024)

    async def read_exactly(self, n: int) -> bytes:
        try:
            return await self._reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise ConnectionClosed(f"stream from {self.remote_address} ended: {exc}") from None

    async def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionClosed(f"stream to {self.remote_address} is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ConnectionClosed(f"stream to {self.remote_address} broke: {exc}") from None

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    @property
    def is_closed(self) -> bool:
        return self._writer.is_closing()


class TcpTransport(Transport):
    def __init__(self) -> None:
        self._servers: list[asyncio.base_events.Server] = []

    async def listen(self, address: str, on_stream: StreamHandler) -> str:
        host, port = split_host_port(address)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await on_stream(TcpStream(reader, writer))

        server = await asyncio.start_server(accept, host, port, limit=_READ_LIMIT)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        return f"{host}:{bound[1]}"

    async def dial(self, address: str) -> ByteStream:
        host, port = split_host_port(address)
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=_READ_LIMIT)
        except OSError as exc:
            raise ConnectionClosed(f"cannot reach {address}: {exc}") from None
        return TcpStream(reader, writer)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
