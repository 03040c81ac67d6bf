"""One authenticated connection: its send queue, writer task and per-peer state.

The send queue has one lane per `Priority`, each bounded in bytes. The writer always
drains the most urgent lane first. When a lane is full, a message whose policy says
"never drop" (consensus, blocks, job updates, RPC) makes its producer wait; a droppable
one (transactions) is dropped and counted in `dropped`. Every queued message is also
charged to the host's `BufferBudget`: when the host's total is spent, a droppable one is
dropped, and for any other the connections holding the most are disconnected until it
fits (`make_room`; it may be this one: it cannot keep up). Memory per peer is bounded
by lanes x `max_bytes` (plus one message that may exceed it when the lane is empty).

The writer seals (encrypts) a frame into the budget's sealing pool (waiting for room
there) and gives it back once written; a write that makes no progress for `send_timeout`
means the peer stopped reading: it is disconnected.
"""

from __future__ import annotations

import asyncio
from collections import deque

from bcai.errors import ConnectionClosed, FrameTooLarge
from bcai.p2p.budget import Account, BufferBudget
from bcai.p2p.gossip import Priority
from bcai.p2p.records import NodeId, SignedNodeRecord
from bcai.p2p.scoring import TokenBucket
from bcai.p2p.secure import OFFLOAD_BYTES, TAG_SIZE, SecureChannel, seal_frame
from bcai.p2p.wire import Message, encode_message_parts

_UNLIMITED = 1 << 62


class SendQueue:
    def __init__(self, max_bytes: int, budget: BufferBudget | None = None, account: Account | None = None) -> None:
        self.max_bytes = max_bytes
        self.budget = budget or BufferBudget(_UNLIMITED, _UNLIMITED, _UNLIMITED)
        self.account = account or self.budget.open_account(self.close)
        self._lanes: dict[Priority, deque[tuple[bytes, bytes]]] = {p: deque() for p in Priority}
        self._bytes: dict[Priority, int] = {p: 0 for p in Priority}
        self._nonempty = asyncio.Event()
        self._space = asyncio.Event()
        self.closed = False
        self.dropped = 0

    async def put(self, frame: tuple[bytes, bytes], priority: Priority, drop_when_full: bool,
                  timeout: float | None = None) -> bool:
        """Queue `frame` (head, body); False if it was dropped because the lane (or the
        host's budget) is full. `asyncio.TimeoutError` if the full lane has not moved for
        `timeout` seconds; `ConnectionClosed` if making room in the budget cut this peer off."""
        size = len(frame[0]) + len(frame[1])
        while self._bytes[priority] and self._bytes[priority] + size > self.max_bytes:
            if self.closed:
                raise ConnectionClosed("connection closed")
            if drop_when_full:
                self.dropped += 1
                return False
            self._space.clear()
            await asyncio.wait_for(self._space.wait(), timeout)
        cost = self.budget.get_send_cost(*frame)
        if not self.closed and not self.budget.is_affordable(cost):
            if drop_when_full:
                self.dropped += 1
                return False
            self.budget.make_room(cost)  # never dropped: whoever holds the most is cut off
        if self.closed:
            raise ConnectionClosed("connection closed")
        self._lanes[priority].append(frame)
        self._bytes[priority] += size
        self.budget.charge_send(self.account, *frame)
        self._nonempty.set()
        return True

    async def get(self) -> tuple[bytes, bytes]:
        """The next frame, most urgent lane first; waits while all lanes are empty. It
        stays charged to the budget until the writer `release`s it (once sealed)."""
        while True:
            if self.closed:
                raise ConnectionClosed("connection closed")
            frame = self.get_nowait()
            if frame is not None:
                return frame
            self._nonempty.clear()
            await self._nonempty.wait()

    def peek_nowait(self) -> tuple[bytes, bytes] | None:
        """The frame `get_nowait` would return, left in the queue."""
        return next((lane[0] for lane in self._lanes.values() if lane), None)

    def get_nowait(self) -> tuple[bytes, bytes] | None:
        """The next frame if one is queued, else None (still charged: see `get`)."""
        for priority in Priority:
            lane = self._lanes[priority]
            if lane:
                frame = lane.popleft()
                self._bytes[priority] -= len(frame[0]) + len(frame[1])
                self._space.set()
                return frame
        return None

    def release(self, frame: tuple[bytes, bytes]) -> None:
        """Give back the budget of a frame taken with `get`."""
        self.budget.release_send(self.account, *frame)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for lane in self._lanes.values():
            for frame in lane:
                self.budget.release_send(self.account, *frame)
            lane.clear()
        self._nonempty.set()
        self._space.set()

    @property
    def queued_bytes(self) -> int:
        return sum(self._bytes.values())


class Peer:
    """A connected, authenticated peer."""

    def __init__(self, channel: SecureChannel, outbound: bool, bucket: TokenBucket, queue_bytes: int,
                 pace: TokenBucket, send_timeout: float = 30.0, budget: BufferBudget | None = None) -> None:
        self.channel = channel
        self.id: NodeId = channel.remote_id
        self.outbound = outbound
        self.bucket = bucket  # what this peer may send us (unsolicited messages)
        self.pace = pace  # droppable gossip we send it, below what its own limit allows
        self.budget = budget or BufferBudget(_UNLIMITED, _UNLIMITED, _UNLIMITED)
        self.account = self.budget.open_account(self.close)
        self.queue = SendQueue(queue_bytes, self.budget, self.account)
        self.topics: set[str] = set()
        self.record: SignedNodeRecord | None = None
        self.closed = False
        self.hello_received = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.requests_in_flight = asyncio.Semaphore(16)
        self.send_timeout = send_timeout
        self.evicted = False  # cut off to keep the host's memory budget
        self.frame_charge = 0  # budget bytes of the frame being read or handled
        self.recv_bytes: TokenBucket | None = None  # unsolicited bytes it may send us (None: no limit)
        # Outbound connections a lookup opened are not kept: closed once idle, or to make
        # room under `max_outbound`; `connect` keeps them (and every other connection).
        self.kept = True
        self.last_used = 0.0  # clock time of the last request either way, or answer
        self.conn_cost = 0  # bytes of the budget's connection pool it holds until closed

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
        current one is written (when the sealing pool has room for both), so the cipher
        and the socket work overlap. A frame stays charged to the budget until its
        ciphertext exists, and the ciphertext to the sealing pool until it is written."""
        current: tuple[tuple[bytes, bytes], int, asyncio.Future[tuple[bytes | bytearray, ...]]] | None = None
        try:
            while True:
                if current is None:
                    frame = await self.queue.get()
                    try:
                        size = await self._reserve_seal(frame)
                    except BaseException:
                        self.queue.release(frame)
                        raise
                    current = (frame, size, self._seal(frame))
                frame, size, sealing = current
                parts = await sealing
                self.queue.release(frame)
                current = None
                following = self.queue.peek_nowait()
                if following is not None and self.budget.try_seal(self._get_sealed_size(following)):
                    following = self.queue.get_nowait()  # the frame peeked at: nothing ran in between
                    assert following is not None
                    current = (following, self._get_sealed_size(following), self._seal(following))
                try:
                    async with asyncio.timeout(self.send_timeout):
                        for part in parts:
                            await self.channel.stream.write(part)
                except TimeoutError:
                    raise ConnectionClosed(f"{self.id!r} read nothing for {self.send_timeout} s") from None
                finally:
                    self.budget.release_seal(size)
        except ConnectionClosed:
            pass
        finally:
            if current is not None:
                current[2].cancel()
                self.budget.release_seal(current[1])
                self.queue.release(current[0])
            self.close()

    @staticmethod
    def _get_sealed_size(frame: tuple[bytes, bytes]) -> int:
        return 4 + len(frame[0]) + len(frame[1]) + TAG_SIZE

    async def _reserve_seal(self, frame: tuple[bytes, bytes]) -> int:
        """Wait for room in the sealing pool (other writers give theirs back as they write)."""
        size = self._get_sealed_size(frame)
        while not self.budget.try_seal(size):
            if self.closed:
                raise ConnectionClosed("connection closed")
            self.budget.seal_released.clear()
            await self.budget.seal_released.wait()
        return size

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
            self.budget.close_account(self.account)
            self.budget.close_connection(self.conn_cost)
            self.channel.close()
