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
from bcai.p2p.secure import SecureChannel
from bcai.p2p.wire import Message, encode_message


class SendQueue:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lanes: dict[Priority, deque[bytes]] = {p: deque() for p in Priority}
        self._bytes: dict[Priority, int] = {p: 0 for p in Priority}
        self._nonempty = asyncio.Event()
        self._space = asyncio.Event()
        self.closed = False
        self.dropped = 0

    async def put(self, frame: bytes, priority: Priority, drop_when_full: bool) -> bool:
        """Queue `frame`; False if it was dropped because the lane is full."""
        while self._bytes[priority] and self._bytes[priority] + len(frame) > self.max_bytes:
            if self.closed:
                raise ConnectionClosed("connection closed")
            if drop_when_full:
                self.dropped += 1
                return False
            self._space.clear()
            await self._space.wait()
        if self.closed:
            raise ConnectionClosed("connection closed")
        self._lanes[priority].append(frame)
        self._bytes[priority] += len(frame)
        self._nonempty.set()
        return True

    async def get(self) -> bytes:
        while True:
            if self.closed:
                raise ConnectionClosed("connection closed")
            for priority in Priority:
                lane = self._lanes[priority]
                if lane:
                    frame = lane.popleft()
                    self._bytes[priority] -= len(frame)
                    self._space.set()
                    return frame
            self._nonempty.clear()
            await self._nonempty.wait()

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

    def __init__(self, channel: SecureChannel, outbound: bool, bucket: TokenBucket, queue_bytes: int) -> None:
        self.channel = channel
        self.id: NodeId = channel.remote_id
        self.outbound = outbound
        self.bucket = bucket
        self.queue = SendQueue(queue_bytes)
        self.topics: set[str] = set()
        self.record: SignedNodeRecord | None = None
        self.closed = False
        self.hello_received = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.requests_in_flight = asyncio.Semaphore(16)

    async def send(self, message: Message, priority: Priority, drop_when_full: bool = False) -> bool:
        frame = encode_message(message)
        if len(frame) > self.channel.max_frame:
            raise FrameTooLarge(f"message of {len(frame)} bytes exceeds the {self.channel.max_frame}-byte frame limit")
        return await self.queue.put(frame, priority, drop_when_full)

    async def run_writer(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                await self.channel.send(frame)
        except ConnectionClosed:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hello_received.set()  # wake anyone waiting for it; they see `closed`
            self.queue.close()
            self.channel.close()
