"""One authenticated connection: its send queue, writer task and per-peer state.

The send queue has one lane per `Priority`, each bounded in bytes. The writer always
drains the most urgent lane first. When a lane is full, a message whose policy says
"never drop" (consensus, blocks, job updates, RPC) makes its producer wait; a droppable
one (transactions) is dropped and counted in `dropped`. Memory per peer is therefore
bounded by lanes x `max_bytes` (plus one message that may exceed it when the lane is empty).
"""

from __future__ import annotations

import asyncio
from collections import deque

from bcai.errors import ConnectionClosed, FrameTooLarge
from bcai.p2p.gossip import Priority
from bcai.p2p.records import NodeId, SignedNodeRecord
from bcai.p2p.scoring import TokenBucket
from bcai.p2p.secure import OFFLOAD_BYTES, SecureChannel, seal_frame
from bcai.p2p.wire import Message, encode_message_parts


class SendQueue:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lanes: dict[Priority, deque[tuple[bytes, bytes]]] = {p: deque() for p in Priority}
        self._bytes: dict[Priority, int] = {p: 0 for p in Priority}
        self._nonempty = asyncio.Event()
        self._space = asyncio.Event()
        self.closed = False
        self.dropped = 0

    async def put(self, frame: tuple[bytes, bytes], priority: Priority, drop_when_full: bool,
                  timeout: float | None = None) -> bool:
        """Queue `frame` (head, body); False if it was dropped because the lane is full.
        `asyncio.TimeoutError` if the full lane has not moved for `timeout` seconds."""
        size = len(frame[0]) + len(frame[1])
        while self._bytes[priority] and self._bytes[priority] + size > self.max_bytes:
            if self.closed:
                raise ConnectionClosed("connection closed")
            if drop_when_full:
                self.dropped += 1
                return False
            self._space.clear()
            await asyncio.wait_for(self._space.wait(), timeout)
        if self.closed:
            raise ConnectionClosed("connection closed")
        self._lanes[priority].append(frame)
        self._bytes[priority] += size
        self._nonempty.set()
        return True

    async def get(self) -> tuple[bytes, bytes]:
        """The next frame, most urgent lane first; waits while all lanes are empty."""
        while True:
            if self.closed:
                raise ConnectionClosed("connection closed")
            frame = self.get_nowait()
            if frame is not None:
                return frame
            self._nonempty.clear()
            await self._nonempty.wait()

    def get_nowait(self) -> tuple[bytes, bytes] | None:
        """The next frame if one is queued, else None."""
        for priority in Priority:
            lane = self._lanes[priority]
            if lane:
                frame = lane.popleft()
                self._bytes[priority] -= len(frame[0]) + len(frame[1])
                self._space.set()
                return frame
        return None

    def close(self) -> None:
        self.closed = True
        for lane in self._lanes.values():
            lane.clear()
        self._nonempty.set()
        self._space.set()

    @property
    def queued_bytes(self) -> int:
        return sum(self._bytes.values())


class Peer:
    """A connected, authenticated peer."""

    def __init__(self, channel: SecureChannel, outbound: bool, bucket: TokenBucket, queue_bytes: int,
                 pace: TokenBucket, send_timeout: float = 30.0) -> None:
        self.channel = channel
        self.id: NodeId = channel.remote_id
        self.outbound = outbound
        self.bucket = bucket  # what this peer may send us (unsolicited messages)
        self.pace = pace  # droppable gossip we send it, below what its own limit allows
        self.queue = SendQueue(queue_bytes)
        self.topics: set[str] = set()
        self.record: SignedNodeRecord | None = None
        self.closed = False
        self.hello_received = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.requests_in_flight = asyncio.Semaphore(16)
        self.send_timeout = send_timeout

    async def send(self, message: Message, priority: Priority, drop_when_full: bool = False) -> bool:
        frame = encode_message_parts(message)
        size = len(frame[0]) + len(frame[1])
        if size > self.channel.max_frame:
            raise FrameTooLarge(f"message of {size} bytes exceeds the {self.channel.max_frame}-byte frame limit")
        try:
            return await self.queue.put(frame, priority, drop_when_full, self.send_timeout)
        except asyncio.TimeoutError:
            # A peer that has read nothing for this long would otherwise hold every producer
            # of never-dropped traffic (consensus, blocks) forever: it is cut off instead.
            self.close()
            raise ConnectionClosed(f"{self.id!r} stopped reading; disconnected") from None

    async def run_writer(self) -> None:
        """Seal and write queued frames in order. Large frames are encrypted on a worker
        thread (OpenSSL releases the GIL), and the next frame is sealed while the
        current one is written, so the cipher and the socket work overlap."""
        sealing: asyncio.Future[tuple[bytes | bytearray, ...]] | None = None
        try:
            while True:
                if sealing is None:
                    sealing = self._seal(await self.queue.get())
                frame = await sealing
                following = self.queue.get_nowait()
                sealing = self._seal(following) if following is not None else None
                for part in frame:
                    await self.channel.stream.write(part)
        except ConnectionClosed:
            pass
        finally:
            if sealing is not None:
                sealing.cancel()
            self.close()

    def _seal(self, frame: tuple[bytes, bytes]) -> asyncio.Future[tuple[bytes | bytearray, ...]]:
        # One seal at a time, in queue order: the nonce counter advances in frame order.
        head, body = frame
        loop = asyncio.get_running_loop()
        if len(body) >= OFFLOAD_BYTES:
            return loop.run_in_executor(None, seal_frame, self.channel, head, body)
        future: asyncio.Future[tuple[bytes | bytearray, ...]] = loop.create_future()
        future.set_result(seal_frame(self.channel, head, body))
        return future

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hello_received.set()  # wake anyone waiting for it; they see `closed`
            self.queue.close()
            self.channel.close()
