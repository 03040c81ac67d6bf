"""TCP transport: asyncio transports with a buffered protocol.

Reads go straight from the socket into the caller's frame buffer (`recv_into`), so a
frame is copied once from the kernel and then decrypted; bytes that
arrive before anyone asks for them wait in a small spill buffer, and reading pauses when
it passes `_SPILL_LIMIT` (a peer cannot make us buffer more than that). Writes go to the
asyncio transport in slices of at most `_WRITE_SLICE`, each after the transport's buffer
has drained below its high-water mark: the transport sends what the socket takes and
keeps the rest in a bytearray that it shifts down after every partial send (Python 3.11),
so one 4 MiB write costs ~8x its size in memmove; 256 KiB slices cost next to nothing.

Every socket's kernel buffers are set explicitly (`SO_RCVBUF` / `SO_SNDBUF`, default 1 MiB
each, which Linux doubles for its bookkeeping): left to autotuning, one connection may
take up to `tcp_rmem`'s maximum (32 MiB here) on the receive side alone. With the spill
and staging buffers and the transport's write buffer, what one connection can hold is
known in advance (`connection_bytes`), and the host charges it to its budget. 1 MiB of
window carries ~20 MB/s per connection at 50 ms round trip (loopback is not limited by it).
"""

from __future__ import annotations

import asyncio
import socket

from bcai.errors import ConnectionClosed
from bcai.p2p.transport import ByteStream, StreamHandler, Transport, split_host_port

_STAGING = 64 * 1024
_SPILL_LIMIT = 256 * 1024
_WRITE_HIGH = 64 * 1024
_WRITE_SLICE = 256 * 1024
SOCKET_BUFFER = 1024 * 1024  # SO_RCVBUF and SO_SNDBUF asked for each socket


def compute_connection_bytes(socket_buffer: int) -> int:
    """The most one TCP connection holds: the kernel's receive and send buffers (Linux
    doubles what is asked for, and caps it at rmem_max / wmem_max), the staging buffer,
    the spill (it pauses reading once past its limit, so at most one staging read over),
    and the transport's write buffer (a slice is handed over below the high-water mark)."""
    return 2 * 2 * socket_buffer + _STAGING + (_SPILL_LIMIT + _STAGING) + (_WRITE_HIGH + _WRITE_SLICE)


class _StreamProtocol(asyncio.BufferedProtocol):
    def __init__(self, socket_buffer: int = SOCKET_BUFFER) -> None:
        self.socket_buffer = socket_buffer
        self.transport: asyncio.Transport | None = None
        self.spill = bytearray()
        self.staging = bytearray(_STAGING)
        self.target: bytearray | None = None  # the buffer of the pending read
        self.filled = 0
        self.ready: asyncio.Future[None] | None = None
        self.closed = False
        self.reading_paused = False
        self.gave_target = False
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.on_connect: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.socket_buffer)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_buffer)
        if not self.on_connect.done():
            self.on_connect.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        target = self.target
        self.gave_target = target is not None and not self.spill and self.filled < len(target)
        if target is not None and self.gave_target:
            return memoryview(target)[self.filled :]
        return memoryview(self.staging)

    def buffer_updated(self, nbytes: int) -> None:
        if self.gave_target:
            self.filled += nbytes
        else:
            self.spill += memoryview(self.staging)[:nbytes]
            self._take_spill()
            if len(self.spill) >= _SPILL_LIMIT and self.transport is not None and not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()
        if self.target is not None and self.filled == len(self.target) and self.ready and not self.ready.done():
            self.ready.set_result(None)

    def _take_spill(self) -> None:
        if self.target is None or not self.spill:
            return
        n = min(len(self.spill), len(self.target) - self.filled)
        self.target[self.filled : self.filled + n] = memoryview(self.spill)[:n]
        self.filled += n
        del self.spill[:n]

    def eof_received(self) -> bool:
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        self.closed = True
        self.can_write.set()
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(None)

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()


class TcpStream(ByteStream):
    def __init__(self, protocol: _StreamProtocol) -> None:
        self._p = protocol
        assert protocol.transport is not None
        self._transport = protocol.transport
        peer = self._transport.get_extra_info("peername")
        self.remote_address = f"{peer[0]}:{peer[1]}" if peer else "?"

    async def read_exactly(self, n: int) -> bytearray:
        p = self._p
        buffer = bytearray(n)
        p.target, p.filled = buffer, 0
        try:
            p._take_spill()
            if p.reading_paused and len(p.spill) < _SPILL_LIMIT:
                p.reading_paused = False
                self._transport.resume_reading()
            while p.filled < n:
                if p.closed:
                    raise ConnectionClosed(f"stream from {self.remote_address} ended")
                p.ready = asyncio.get_running_loop().create_future()
                await p.ready
        finally:
            p.target, p.ready = None, None
        return buffer

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, max(len(view), 1), _WRITE_SLICE):
            if self._p.closed or self._transport.is_closing():
                raise ConnectionClosed(f"stream to {self.remote_address} is closed")
            self._transport.write(view[start : start + _WRITE_SLICE])
            await self._p.can_write.wait()
        if self._p.closed:
            raise ConnectionClosed(f"stream to {self.remote_address} is closed")

    def close(self) -> None:
        self._p._finish()
        self._transport.close()

    @property
    def is_closed(self) -> bool:
        return self._p.closed or self._transport.is_closing()


class TcpTransport(Transport):
    """TCP streams whose sockets ask for `socket_buffer` bytes of kernel buffer each way."""

    def __init__(self, socket_buffer: int = SOCKET_BUFFER) -> None:
        if socket_buffer < 4096:
            raise ValueError("socket_buffer must be at least 4096 bytes")
        self.socket_buffer = socket_buffer
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connection_bytes(self) -> int:
        return compute_connection_bytes(self.socket_buffer)

    async def listen(self, address: str, on_stream: StreamHandler) -> str:
        host, port = split_host_port(address)
        loop = asyncio.get_running_loop()

        def make() -> _StreamProtocol:
            protocol = _StreamProtocol(self.socket_buffer)
            protocol.on_connect.add_done_callback(lambda _: self._accepted(protocol, on_stream))
            return protocol

        server = await loop.create_server(make, host, port)
        for sock in server.sockets:  # accepted sockets start from the listener's sizes
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.socket_buffer)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_buffer)
        self._servers.append(server)
        return f"{host}:{server.sockets[0].getsockname()[1]}"

    def _accepted(self, protocol: _StreamProtocol, on_stream: StreamHandler) -> None:
        task = asyncio.get_running_loop().create_task(on_stream(TcpStream(protocol)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def dial(self, address: str) -> ByteStream:
        host, port = split_host_port(address)
        try:
            _, protocol = await asyncio.get_running_loop().create_connection(
                lambda: _StreamProtocol(self.socket_buffer), host, port)
        except OSError as exc:
            raise ConnectionClosed(f"cannot reach {address}: {exc}") from None
        return TcpStream(protocol)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
