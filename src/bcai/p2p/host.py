"""`Host`: one node's presence on the network (the asyncio shell around the p2p cores).

It owns the listener, the authenticated connections (`Peer`), gossip (subscriptions,
seen-cache, forwarding), request/response with ids and timeouts, rate limits and peer
scores, and hands node records to discovery. The node process builds one `Host` and
plugs its protocols in with `subscribe` and `register_handler`.

Reading is one task per peer: decrypt, decode, check the rate limit, dispatch. Gossip
handlers run inline (a slow handler slows that peer's reader: backpressure, not an
unbounded backlog); request handlers run as tasks, at most 16 at once per peer.
Responses to our own requests are exempt from the rate limit: the peer did not choose
to send them. So are requests on a *bulk* protocol (content transfer) that we answer
with at least `BULK_FREE_BYTES`: a fetch at disk or network speed asks for hundreds of
chunks a second, and what bounds it is the 16 requests in flight per peer and the
requester having to read every response (our send queue blocks otherwise, and with it
that peer's reader), i.e. bandwidth. A bulk request answered with less (a manifest, a
small blob) or not at all (unknown content, a malformed ask) costs a token like any other
message, so a flood of cheap asks is still cut off.

Bytes are limited too (`recv_bytes_per_s`): within 100 messages a second a peer could
still send 100 x 16 MiB. Every frame but a response to our own request is charged to the
peer's byte bucket once it is in (its kind is only known then), and while the bucket is
in debt we read nothing more from that peer: its frames wait in its socket and TCP slows
it down (as CometBFT's `recv_rate`). Nothing is dropped, so consensus never is.

Connections are bounded by count and by memory: at most `max_inbound` accepted and
`max_outbound` dialed, and each, half-open handshakes included, holds its transport's
worst case (`Transport.connection_bytes`) of the budget's connection pool (`conn_bytes`).
Connections a Kademlia lookup opened are not kept: one unused for `lookup_idle_s` is
closed, and the least recently used goes first when a dial needs its slot (as libp2p's
connection manager trims unprotected connections). `connect` keeps what it opens.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bcai.crypto import Address, PrivateKey
from bcai.errors import (
    BcaiError,
    ConnectionClosed,
    FrameAuthenticationFailed,
    FrameTooLarge,
    HandshakeFailed,
    InvalidGossip,
    InvalidNodeRecord,
    MalformedMessage,
    OutboundLimitReached,
    PeerBanned,
    PeerNotConnected,
    RequestFailed,
    RequestTimeout,
)
from bcai.p2p import scoring
from bcai.p2p.budget import BufferBudget
from bcai.p2p.clock import Clock, SystemClock
from bcai.p2p.discovery import RECORDS_TOPIC, Discovery
from bcai.p2p.gossip import (
    Priority,
    SeenCache,
    compute_forward_targets,
    compute_message_id,
    compute_seen_key,
    get_topic_policy,
)
from bcai.p2p.peer import Peer
from bcai.p2p.records import NodeId, NodeRecord, SignedNodeRecord
from bcai.p2p.scoring import PeerScores, TokenBucket
from bcai.p2p.secure import MAX_FRAME, TAG_SIZE, SecureChannel, perform_handshake
from bcai.p2p.transport import ByteStream, Transport, get_remote_host, is_loopback_host
from bcai.p2p.wire import MAX_TOPICS, Hello, Message, Publish, Request, Response, Subscribe, decode_message, is_valid_name

log = logging.getLogger(__name__)

BULK_FREE_BYTES = 64 * 1024  # a bulk answer this large is bounded by bandwidth, not by the rate limit


@dataclass(frozen=True, slots=True)
class HostConfig:
    network_id: str = "bcai"
    max_frame: int = MAX_FRAME
    rate_per_s: float = 100.0  # unsolicited messages per second per peer
    rate_burst: float = 200.0
    # droppable gossip (txs) we send each peer: half of the default limit above, so what we
    # relay never gets us cut off by a neighbour however much arrives
    relay_per_s: float = 50.0
    relay_burst: float = 100.0
    ban_seconds: float = 600.0
    handshake_timeout: float = 10.0
    request_timeout: float = 30.0
    queue_bytes: int = 32 * 1024 * 1024  # per priority lane per peer
    # what one peer can make us hold on the receive side: the frame being read, messages
    # being handled, its requests and their answers until queued (at least one max frame)
    peer_recv_bytes: int = 64 * 1024 * 1024
    buffer_bytes: int = 1024 * 1024 * 1024  # all peers' receive bytes and send queues together
    seal_bytes: int = 256 * 1024 * 1024  # ciphertext being written, all peers together
    send_timeout: float = 30.0  # a peer whose full send queue has not moved for this long is cut off
    max_inbound: int = 128
    max_handshakes_per_ip: int = 8  # handshakes in progress from one remote host
    max_inbound_per_ip: int = 16  # inbound connections from one remote host (loopback: no limit)
    seen_cache_size: int = 100_000
    seen_ttl: float = 120.0
    k: int = 20
    alpha: int = 3
    record_cache_size: int = 10_000  # signed node records kept (oldest heard of first out)
    record_ttl: float = 3600.0  # a record not heard of for this long is forgotten; ours is re-announced every third of it
    lookup_ids_per_host: int = 2  # node ids at one host (IP or name) one lookup takes as candidates
    lookup_max_dials: int = 40  # new connections one lookup may open
    # unsolicited bytes per second per peer (responses to our requests are free); a peer
    # over it is not read from until it is back within the rate (nothing is dropped). We
    # may wait max_frame / recv_bytes_per_s before reading on, which must stay well below
    # an honest sender's `send_timeout` (0.5 s against 30 s by default)
    recv_bytes_per_s: int = 32 * 1024 * 1024
    recv_bytes_burst: int = 64 * 1024 * 1024
    max_outbound: int = 32  # connections we dial; idle ones a lookup opened make room first
    lookup_idle_s: float = 60.0  # a connection a lookup opened, unused for this long, is closed
    # socket and stream buffers of all open connections (half-open ones too), each charged
    # its transport's worst case (TCP: ~4.7 MiB with 1 MiB socket buffers)
    conn_bytes: int = 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.peer_recv_bytes < self.max_frame + TAG_SIZE:
            raise ValueError("peer_recv_bytes must hold at least one frame (max_frame + 16)")
        if self.buffer_bytes < self.peer_recv_bytes:
            raise ValueError("buffer_bytes must be at least peer_recv_bytes")
        if min(self.recv_bytes_per_s, self.recv_bytes_burst, self.max_outbound, self.lookup_idle_s) <= 0:
            raise ValueError("recv_bytes_per_s, recv_bytes_burst, max_outbound and lookup_idle_s must be positive")


@dataclass(frozen=True, slots=True)
class GossipMessage:
    topic: str
    data: bytes
    message_id: bytes
    source: NodeId  # the peer that handed it to us (not necessarily its author)


# A gossip handler returns None (or True) to have the message forwarded at once, False to
# hold it back: it may check the message later and pass it to `Host.forward` if it is good.
GossipHandler = Callable[[GossipMessage], Awaitable[bool | None]]
RequestHandler = Callable[[NodeId, bytes], Awaitable[bytes]]


class Host:
    """A node on the p2p network.

    Example (two nodes in one process, in-memory transport)::

        net = MemoryNetwork()
        a = Host(PrivateKey.from_label("a"), net.transport())
        b = Host(PrivateKey.from_label("b"), net.transport())
        await a.start("mem:0"); await b.start("mem:0")
        await b.subscribe("blocks", on_block)
        await a.connect(b.address, b.node_id)
        await a.publish("blocks", b"...")
    """

    def __init__(
        self,
        key: PrivateKey,
        transport: Transport,
        config: HostConfig = HostConfig(),
        clock: Clock | None = None,
        roles: frozenset[str] = frozenset(),
        capabilities: dict[str, int] | None = None,
    ) -> None:
        self.key = key
        self.node_id = NodeId.of(key.public_key)
        self.transport = transport
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.address = ""
        self._roles = roles
        self._capabilities = dict(capabilities or {})
        self._record_seq = 0
        self.record: SignedNodeRecord | None = None
        self.scores = PeerScores(ban_seconds=config.ban_seconds)
        self.seen = SeenCache(config.seen_cache_size, config.seen_ttl)
        if config.conn_bytes < (config.max_outbound + 1) * transport.connection_bytes:
            # inbound connections leave room for `max_outbound`: with less, none would fit
            raise ValueError(f"conn_bytes must hold max_outbound + 1 connections of {transport.connection_bytes} bytes")
        self.budget = BufferBudget(config.buffer_bytes, config.peer_recv_bytes, config.seal_bytes, config.conn_bytes)
        self.metrics: Counter[str] = Counter()
        self._peers: dict[NodeId, Peer] = {}
        self._topics: dict[str, GossipHandler] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self._bulk_protocols: set[str] = set()  # answered requests not charged to the rate limit
        self._pending: dict[int, tuple[NodeId, asyncio.Future[tuple[bool, bytes]]]] = {}
        self._request_ids = itertools.count(1)
        self._timed_out: OrderedDict[int, None] = OrderedDict()  # recent ids, for late answers
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._handshaking = 0
        self._handshaking_from: Counter[str] = Counter()  # remote host -> handshakes in progress
        self._dialing = 0  # outbound connections being opened (they hold their slot already)
        self._connecting: Counter[NodeId] = Counter()  # dialed, `connect` waiting for the hello
        self.discovery = Discovery(self)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, listen: str = "127.0.0.1:0", advertise: str | None = None) -> str:
        """Listen on `listen` ("host:port", port 0 picks one); return the bound address.

        `advertise` is the address put in our node record when it differs from the bound
        one (listening on 0.0.0.0, or behind a port mapping).
        """
        bound = await self.transport.listen(listen, self._on_inbound)
        self.address = advertise or bound
        self._topics[RECORDS_TOPIC] = self.discovery.process_record_gossip
        self.update_record()
        self._spawn(self._refresh_record())
        self._spawn(self._close_idle_loop())
        return bound

    async def _refresh_record(self) -> None:
        """Re-sign and re-announce our record every third of `record_ttl`: other nodes
        forget records they have not heard of for that long (they may belong to nodes
        long gone), so a live node must keep reminding them."""
        while True:
            await asyncio.sleep(self.config.record_ttl / 3)
            self.update_record()

    async def stop(self) -> None:
        self._stopped = True
        for peer in list(self._peers.values()):
            peer.close()
        await self.transport.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._peers.clear()

    def update_record(self, roles: frozenset[str] | None = None, capabilities: dict[str, int] | None = None) -> SignedNodeRecord:
        """Re-sign our node record (a higher sequence number) and announce it to peers."""
        if roles is not None:
            self._roles = roles
        if capabilities is not None:
            self._capabilities = dict(capabilities)
        # Milliseconds of wall-clock time (at least one more than the last): a restarted node
        # must out-number the records it signed in its previous life, which peers still hold.
        self._record_seq = max(self._record_seq + 1, time.time_ns() // 1_000_000)
        record = NodeRecord(self.key.public_key, self.address, self._roles, self._capabilities, self._record_seq)
        self.record = record.sign(self.key, self.config.network_id)
        self.discovery.process_own_record(self.record)
        for peer in list(self._peers.values()):
            self._spawn(self._send_quietly(peer, self._hello()))
        if self._peers:
            self._spawn(self.discovery.announce())
        return self.record

    # --- connections ----------------------------------------------------------------

    @property
    def peers(self) -> list[NodeId]:
        return sorted(self._peers)

    def get_peer_record(self, node: NodeId) -> SignedNodeRecord | None:
        peer = self._peers.get(node)
        return peer.record if peer else None

    async def connect(self, address: str, expected: NodeId | Address, keep: bool = True) -> NodeId:
        """Dial `address`, check that the node there proves to be `expected` (its node id,
        or its account address), and return its node id once its hello has arrived.

        `keep=False` (what lookups use) lets the host close the connection once idle or
        when a dial needs its slot; connecting again with `keep=True` keeps it.
        Raises `PeerIdentityMismatch`, `HandshakeFailed`, `PeerBanned`, `ConnectionClosed`,
        `OutboundLimitReached`.
        """
        if expected in (self.node_id, self.key.address):
            raise HandshakeFailed("refusing to connect to ourselves")
        if isinstance(expected, NodeId):
            existing = self._peers.get(expected)
            if existing is not None:
                existing.kept = existing.kept or keep
                return expected
            if self.scores.is_banned(expected, self.clock.now()):
                raise PeerBanned(f"{expected!r} is banned")
        cost = self._open_outbound()
        added = False
        try:
            try:  # a blackholed address must not hold the caller for the OS's connect timeout
                stream = await asyncio.wait_for(self.transport.dial(address), self.config.handshake_timeout)
            except asyncio.TimeoutError:
                raise ConnectionClosed(f"dialing {address} timed out") from None
            channel = await perform_handshake(
                stream, self.key, self.config.network_id, expected, self.config.handshake_timeout, self.config.max_frame
            )
            expected = channel.remote_id
            added = True
            self._add_peer(channel, outbound=True, conn_cost=cost, keep=keep)
        finally:
            self._dialing -= 1
            if not added:
                self.budget.close_connection(cost)
        if self.is_banned(expected):
            raise PeerBanned(f"{expected!r} is banned")
        self._connecting[expected] += 1  # not idle: its dialer is about to use it
        try:
            return await self._wait_for_hello(expected)
        finally:
            self._connecting[expected] -= 1
            if not self._connecting[expected]:
                del self._connecting[expected]

    async def _wait_for_hello(self, expected: NodeId) -> NodeId:
        # Return once the peer's hello (record, topics) is in, so callers can rely on it.
        # If both sides dialed at once, the connection we waited on may lose the tie-break
        # to the other one: then wait on the survivor.
        for _ in range(3):
            peer = self._peers.get(expected)
            if peer is None:
                break
            try:
                await asyncio.wait_for(peer.hello_received.wait(), self.config.handshake_timeout)
            except asyncio.TimeoutError:
                peer.close()
                raise HandshakeFailed(f"{expected!r} sent no hello") from None
            if not peer.closed:
                return expected
            await asyncio.sleep(0)
        raise ConnectionClosed(f"{expected!r} hung up")

    def disconnect(self, node: NodeId) -> None:
        peer = self._peers.get(node)
        if peer is not None:
            peer.close()

    def _count_outbound(self) -> int:
        return self._dialing + sum(1 for p in self._peers.values() if p.outbound and not p.closed)

    def _open_outbound(self) -> int:
        """Take a dial's slot under `max_outbound` and its share of the connection pool
        (returned: the cost), closing the least recently used idle connection a lookup
        opened while that makes room; `OutboundLimitReached` when nothing can."""
        cost = self.transport.connection_bytes
        while not (self._count_outbound() < self.config.max_outbound and self.budget.try_open_connection(cost)):
            idle = self._get_idle_lookup_peers()
            if not idle:
                self.metrics["outbound_refused"] += 1
                raise OutboundLimitReached(
                    f"{self._count_outbound()} outbound connections (max {self.config.max_outbound}), "
                    f"{self.budget.connections} of {self.budget.conn_limit} connection bytes, none idle to close")
            self.metrics["lookup_closed"] += 1
            self._remove_peer(idle[0])  # gone from `peers` at once: nobody may ask it meanwhile
        self._dialing += 1
        return cost

    def _get_idle_lookup_peers(self) -> list[Peer]:
        """Connections a lookup opened (not kept) with no request of ours waiting on them
        (nor their dialer on their hello), least recently used first."""
        busy = {node for node, _ in self._pending.values()} | set(self._connecting)
        idle = [p for p in self._peers.values() if p.outbound and not p.kept and not p.closed and p.id not in busy]
        return sorted(idle, key=lambda p: p.last_used)

    def close_idle_connections(self) -> int:
        """Close the connections a lookup opened that nobody used for `lookup_idle_s`;
        return how many (the host also does this on its own, every half of that time)."""
        cutoff = self.clock.now() - self.config.lookup_idle_s
        idle = [p for p in self._get_idle_lookup_peers() if p.last_used <= cutoff]
        for peer in idle:
            self._remove_peer(peer)
        self.metrics["lookup_closed"] += len(idle)
        return len(idle)

    async def _close_idle_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.lookup_idle_s / 2)
            self.close_idle_connections()

    async def _on_inbound(self, stream: ByteStream) -> None:
        inbound = sum(1 for p in self._peers.values() if not p.outbound)
        # Half-open handshakes are capped too, so a swarm of silent sockets cannot pile up,
        # and per remote host, so one machine's silent sockets cannot take every slot.
        source = get_remote_host(stream.remote_address)
        if (self._stopped or inbound >= self.config.max_inbound or self._handshaking >= self.config.max_inbound
                or self._handshaking_from[source] >= self.config.max_handshakes_per_ip
                or self._is_host_full(source)):
            self.metrics["refused_inbound"] += 1
            stream.close()
            return
        # Its buffers come out of the connection pool, leaving room for the dials we may make.
        cost = self.transport.connection_bytes
        reserve = max(0, self.config.max_outbound - self._count_outbound()) * cost
        if not self.budget.try_open_connection(cost, reserve):
            self.metrics["refused_inbound"] += 1
            self.metrics["conn_budget_full"] += 1
            stream.close()
            return
        self._handshaking += 1
        self._handshaking_from[source] += 1
        try:
            channel = await perform_handshake(
                stream, self.key, self.config.network_id, None, self.config.handshake_timeout, self.config.max_frame
            )
        except (HandshakeFailed, ConnectionClosed) as exc:
            self.metrics["handshake_failures"] += 1
            log.debug("inbound handshake failed: %s", exc)
            stream.close()
            self.budget.close_connection(cost)
            return
        except BaseException:
            self.budget.close_connection(cost)
            raise
        finally:
            self._handshaking -= 1
            self._handshaking_from[source] -= 1
            if not self._handshaking_from[source]:
                del self._handshaking_from[source]
        self._add_peer(channel, outbound=False, conn_cost=cost)

    def _is_host_full(self, source: str) -> bool:
        """Whether `source` has `max_inbound_per_ip` inbound connections already: keys are
        free, so one machine could otherwise hold every inbound slot. Loopback is exempt:
        a local network has every node at 127.0.0.1, and a local attacker has easier ways."""
        if is_loopback_host(source):
            return False
        return sum(1 for p in self._peers.values()
                   if not p.outbound and get_remote_host(p.channel.stream.remote_address) == source
                   ) >= self.config.max_inbound_per_ip

    def _add_peer(self, channel: SecureChannel, outbound: bool, conn_cost: int = 0, keep: bool = True) -> None:
        """Make an authenticated channel a peer; it takes over `conn_cost` bytes of the
        connection pool (given back here if the channel is refused)."""
        node = channel.remote_id
        refused = self._stopped or self.scores.is_banned(node, self.clock.now())
        if not refused and not outbound and node not in self._peers and self._is_host_full(
                get_remote_host(channel.stream.remote_address)):
            self.metrics["refused_inbound"] += 1  # several handshakes from it finished at once
            refused = True
        existing = self._peers.get(node)
        if not refused and existing is not None:
            # Both sides dialed at once: keep the connection the smaller node id dialed.
            dialer = self.node_id if outbound else node
            refused = dialer != min(self.node_id, node)
            keep = keep or existing.kept
        if refused:
            channel.close()
            self.budget.close_connection(conn_cost)
            return
        if existing is not None:
            existing.close()
        now = self.clock.now()
        bucket = TokenBucket.full(self.config.rate_per_s, self.config.rate_burst, now)
        pace = TokenBucket.full(self.config.relay_per_s, self.config.relay_burst, now)
        peer = Peer(channel, outbound, bucket, self.config.queue_bytes, pace, self.config.send_timeout, self.budget)
        peer.recv_bytes = TokenBucket.full(self.config.recv_bytes_per_s, self.config.recv_bytes_burst, now)
        peer.conn_cost, peer.kept, peer.last_used = conn_cost, keep, now
        peer.account.evict = lambda: self._evict(peer)
        self._peers[node] = peer
        peer.channel.frame_timeout = self.config.send_timeout
        peer.tasks = [self._spawn(peer.run_writer()), self._spawn(self._read_loop(peer))]
        self._spawn(self._send_quietly(peer, self._hello()))
        if not outbound:  # `connect` waits for the hello of those we dial
            self._spawn(self._expect_hello(peer))

    async def _expect_hello(self, peer: Peer) -> None:
        """An honest node says hello first thing; a caller that does not within
        `handshake_timeout` would only hold an inbound slot: it is cut off."""
        try:
            await asyncio.wait_for(peer.hello_received.wait(), self.config.handshake_timeout)
        except asyncio.TimeoutError:
            self.metrics["no_hello"] += 1
            peer.close()

    def _remove_peer(self, peer: Peer) -> None:
        peer.close()
        if self._peers.get(peer.id) is peer:
            del self._peers[peer.id]
        for rid, (node, future) in list(self._pending.items()):
            if node == peer.id and not future.done():
                future.set_exception(ConnectionClosed(f"{peer.id!r} disconnected"))

    def _hello(self) -> Hello:
        assert self.record is not None, "start() the host first"
        return Hello(self.record.to_bytes(), tuple(sorted(self._topics)))

    def _evict(self, peer: Peer) -> None:
        """Cut a peer off to keep the memory budget: it holds the most (it cannot keep up
        with what it is sent) or it asks for answers faster than it reads them."""
        if not peer.closed:
            self.metrics["over_budget"] += 1
            log.info("disconnecting %r: over the memory budget (%d bytes held)", peer.id, peer.account.held)
            peer.evicted = True
            peer.close()

    def penalize(self, node: NodeId, points: float, why: str) -> None:
        """Lower a peer's score; at the threshold it is disconnected and banned."""
        self.metrics["penalties"] += 1
        log.debug("penalty %.0f for %r: %s", points, node, why)
        if self.scores.process_penalty(node, points, self.clock.now()):
            self.metrics["bans"] += 1
            log.info("banned %r (%s)", node, why)
            self.disconnect(node)

    def is_banned(self, node: NodeId) -> bool:
        return self.scores.is_banned(node, self.clock.now())

    # --- reading --------------------------------------------------------------------

    async def _read_loop(self, peer: Peer) -> None:
        reserve = functools.partial(self._reserve_frame, peer)
        try:
            while not peer.closed:
                await self._wait_for_recv_bytes(peer)
                frame = await peer.channel.recv(reserve)
                size = 4 + len(frame) + TAG_SIZE
                message: Message | None = None
                try:
                    message = decode_message(frame)
                except MalformedMessage as exc:
                    self.metrics["malformed"] += 1
                    self.penalize(peer.id, scoring.PENALTY_MALFORMED, str(exc))
                if not self._is_solicited(peer, message):
                    assert peer.recv_bytes is not None
                    peer.recv_bytes.charge(self.clock.now(), size)
                del frame  # the message holds its own copy: the plaintext must not wait for the next frame
                try:
                    if message is not None and not peer.closed:
                        await self._process_message(peer, message)
                finally:
                    message = None
                    self._release_frame(peer)
        except FrameTooLarge as exc:
            self.metrics["oversized_frames"] += 1
            self.penalize(peer.id, scoring.PENALTY_OVERSIZED, str(exc))
        except FrameAuthenticationFailed as exc:
            self.metrics["bad_frames"] += 1
            self.penalize(peer.id, scoring.PENALTY_BAD_FRAME, str(exc))
        except ConnectionClosed:
            pass
        finally:
            self._remove_peer(peer)

    async def _wait_for_recv_bytes(self, peer: Peer) -> None:
        """The byte rate's back-pressure: while the peer owes bytes we read nothing more
        from it, so its frames wait in its socket and TCP slows it down. Nothing is dropped
        (consensus never is) and nobody else waits: each peer has its own reader."""
        bucket = peer.recv_bytes
        if bucket is None:
            return
        debt = bucket.get_debt(self.clock.now())
        if debt:
            self.metrics["recv_throttled"] += 1
        while debt and not peer.closed:
            await asyncio.sleep(max(debt / bucket.rate, 0.001))
            debt = bucket.get_debt(self.clock.now())

    def _is_solicited(self, peer: Peer, message: Message | None) -> bool:
        """A response to a request of ours waiting on this peer: we chose to receive it
        (a block range, a content chunk), so it costs the peer nothing of its byte rate."""
        if not isinstance(message, Response):
            return False
        pending = self._pending.get(message.request_id)
        return pending is not None and pending[0] == peer.id

    async def _reserve_frame(self, peer: Peer, length: int) -> None:
        """Charge a frame to the budget before its buffer exists. Over the peer's own
        receive limit we stop reading it until its requests are answered (TCP pushes back
        on it); over the host's total, whoever holds the most is cut off (maybe this peer)."""
        while not self.budget.is_within_peer_limit(peer.account, length):
            if peer.closed:
                raise ConnectionClosed(f"{peer.id!r} closed")
            self.budget.recv_released.clear()
            await self.budget.recv_released.wait()
        self.budget.make_room(length)
        if peer.closed:
            raise ConnectionClosed(f"{peer.id!r} cut off to keep the memory budget")
        self.budget.charge_recv(peer.account, length)
        peer.frame_charge = length

    def _release_frame(self, peer: Peer) -> None:
        if peer.frame_charge:
            self.budget.release_recv(peer.account, peer.frame_charge)
            peer.frame_charge = 0

    def _take_frame_charge(self, peer: Peer) -> int:
        """Hand the current frame's charge to a request task (it gives it back once answered)."""
        charge, peer.frame_charge = peer.frame_charge, 0
        return charge

    async def _process_message(self, peer: Peer, message: Message) -> None:
        if isinstance(message, Response):
            self._process_response(peer, message)
            return
        if isinstance(message, Request) and message.protocol in self._bulk_protocols:
            await peer.requests_in_flight.acquire()  # paid for below, if it fails
            self._spawn(self._serve_request(peer, message, self._take_frame_charge(peer)))
            return
        if not self._take_token(peer):
            return
        if isinstance(message, Publish):
            await self._process_publish(peer, message)
        elif isinstance(message, Request):
            await peer.requests_in_flight.acquire()
            self._spawn(self._serve_request(peer, message, self._take_frame_charge(peer)))
        elif isinstance(message, Subscribe):
            if message.subscribed and len(peer.topics) < MAX_TOPICS:
                peer.topics.add(message.topic)
            elif not message.subscribed:
                peer.topics.discard(message.topic)
        else:
            self._process_hello(peer, message)

    def take_tokens(self, node: NodeId, cost: float) -> bool:
        """Charge `cost` more messages to a connected peer's rate limit, for a request that
        costs us as much as that many (a scan of thousands of records, say); False (and a
        penalty) when it is over, or not connected."""
        peer = self._peers.get(node)
        return peer is not None and self._take_token(peer, cost)

    def _take_token(self, peer: Peer, cost: float = 1.0) -> bool:
        """Charge one message to the peer's rate limit; False (and a penalty) when it is over."""
        if peer.bucket.take(self.clock.now(), cost):
            return True
        self.metrics["rate_limited"] += 1
        self.penalize(peer.id, scoring.PENALTY_RATE_LIMIT, "over the rate limit")
        return False

    def _process_hello(self, peer: Peer, hello: Hello) -> None:
        try:
            signed = self.discovery.decode_record(hello.record)
            if signed.node_id != peer.id:
                raise InvalidNodeRecord("hello carries another node's record")
        except InvalidNodeRecord as exc:
            self.penalize(peer.id, scoring.PENALTY_MALFORMED, str(exc))
            return
        if peer.record is None or signed.record.seq >= peer.record.record.seq:
            peer.record = signed
        peer.topics = set(hello.topics)
        peer.hello_received.set()
        self.discovery.process_record(signed)

    # --- gossip ---------------------------------------------------------------------

    async def subscribe(self, topic: str, handler: GossipHandler) -> None:
        """Receive `topic`'s messages in `handler` (raise `InvalidGossip` to reject one:
        it is not forwarded and the sender's score drops; return False to forward it only
        later, through `forward`, once it is checked); tell peers to send it to us."""
        if not is_valid_name(topic) or topic == RECORDS_TOPIC:
            raise InvalidGossip(f"bad or reserved topic name {topic!r}")
        new = topic not in self._topics
        self._topics[topic] = handler
        if new:
            await self._announce(Subscribe(topic, True))

    async def unsubscribe(self, topic: str) -> None:
        if topic != RECORDS_TOPIC and self._topics.pop(topic, None) is not None:
            await self._announce(Subscribe(topic, False))

    @property
    def topics(self) -> list[str]:
        return sorted(self._topics)

    def get_subscribers(self, topic: str) -> list[NodeId]:
        return sorted(p.id for p in self._peers.values() if topic in p.topics)

    async def publish(self, topic: str, data: bytes) -> bytes:
        """Send `data` to every subscriber of `topic`; return its message id (SHA-256)."""
        if not is_valid_name(topic):
            raise InvalidGossip(f"bad topic name {topic!r}")
        if len(data) + 2 + len(topic) > self.config.max_frame:
            raise InvalidGossip(f"a {len(data)}-byte message exceeds the frame limit")
        message_id = compute_message_id(data)
        self.seen.process_message_id(compute_seen_key(topic, message_id), self.clock.now())
        await self._forward(topic, data, None)
        return message_id

    async def _process_publish(self, peer: Peer, message: Publish) -> None:
        handler = self._topics.get(message.topic)
        if handler is None:
            self.metrics["unsolicited"] += 1
            self.penalize(peer.id, scoring.PENALTY_UNSOLICITED, f"sent {message.topic} unasked")
            return
        message_id = compute_message_id(message.data)
        if not self.seen.process_message_id(compute_seen_key(message.topic, message_id), self.clock.now()):
            self.metrics["duplicates"] += 1
            return
        gossip = GossipMessage(message.topic, message.data, message_id, peer.id)
        try:
            forward_now = await handler(gossip)
        except BcaiError as exc:
            if exc.peer_fault:
                self.metrics["invalid_gossip"] += 1
                self.penalize(peer.id, scoring.PENALTY_INVALID_GOSSIP, str(exc))
            return
        except Exception:
            log.exception("handler for %s failed", message.topic)
            return
        self.metrics["delivered"] += 1
        if forward_now is not False:
            await self.forward(gossip)

    async def forward(self, message: GossipMessage) -> None:
        """Relay a received message to the topic's other subscribers (what `_process_publish`
        does itself unless the handler held the message back)."""
        await self._forward(message.topic, message.data, message.source)

    async def _forward(self, topic: str, data: bytes, exclude: NodeId | None) -> None:
        """Queue `data` for every subscriber but `exclude`. Droppable topics (txs) are also
        paced per peer (`relay_per_s`, half the default rate limit every peer applies to
        us): whatever arrives, we never send a neighbour enough of them to be cut off."""
        policy = get_topic_policy(topic)
        targets = compute_forward_targets({p.id: p.topics for p in self._peers.values()}, topic, exclude)
        now = self.clock.now()
        for node in targets:
            peer = self._peers.get(node)
            if peer is None:
                continue
            if policy.drop_when_full and not peer.pace.take(now):
                self.metrics["paced"] += 1
                continue
            try:
                if not await peer.send(Publish(topic, data), policy.priority, policy.drop_when_full):
                    self.metrics["dropped"] += 1
            except ConnectionClosed:
                continue

    async def _announce(self, message: Message) -> None:
        for peer in list(self._peers.values()):
            await self._send_quietly(peer, message)

    # --- request / response ---------------------------------------------------------

    def register_handler(
        self, protocol: str, handler: RequestHandler, replace: bool = False, bulk: bool | None = None
    ) -> None:
        """Answer requests for `protocol` with `handler(peer, payload) -> response bytes`.

        A handler raising a `BcaiError` sends an error response (its message); one with
        `peer_fault` also lowers the requester's score. With `bulk`, requests answered with
        `BULK_FREE_BYTES` or more are not charged to the requester's rate limit, the others
        are (see the module doc);
        None keeps what a replaced handler's protocol had (not bulk for a new one).
        """
        if not is_valid_name(protocol):
            raise ValueError(f"bad protocol name {protocol!r}")
        if protocol in self._handlers and not replace:
            raise ValueError(f"a handler for {protocol!r} is already registered")
        self._handlers[protocol] = handler
        if bulk is True:
            self._bulk_protocols.add(protocol)
        elif bulk is False:
            self._bulk_protocols.discard(protocol)

    async def request(self, node: NodeId, protocol: str, payload: bytes, timeout: float | None = None) -> bytes:
        """Send a request to a connected peer and wait for its response bytes.

        Raises `PeerNotConnected`, `RequestTimeout`, `RequestFailed` (the peer answered
        with an error) or `ConnectionClosed` (it went away meanwhile).
        """
        peer = self._peers.get(node)
        if peer is None:
            raise PeerNotConnected(f"not connected to {node!r}")
        if not is_valid_name(protocol):
            raise ValueError(f"bad protocol name {protocol!r}")
        request_id = next(self._request_ids)
        future: asyncio.Future[tuple[bool, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (node, future)
        peer.last_used = self.clock.now()
        try:
            await peer.send(Request(request_id, protocol, payload), Priority.NORMAL)
            ok, body = await asyncio.wait_for(future, timeout or self.config.request_timeout)
        except asyncio.TimeoutError:
            self._timed_out[request_id] = None
            while len(self._timed_out) > 4096:
                self._timed_out.popitem(last=False)
            raise RequestTimeout(f"{protocol} request to {node!r} timed out") from None
        finally:
            self._pending.pop(request_id, None)
        if not ok:
            raise RequestFailed(f"{node!r} answered {protocol}: {body.decode('utf-8', 'replace')}")
        return body

    def _process_response(self, peer: Peer, response: Response) -> None:
        pending = self._pending.get(response.request_id)
        if pending is None and response.request_id in self._timed_out:
            del self._timed_out[response.request_id]
            self.metrics["late_responses"] += 1  # slow, not hostile: no penalty
            return
        if pending is None or pending[0] != peer.id:
            self.metrics["unsolicited"] += 1
            self.penalize(peer.id, scoring.PENALTY_UNSOLICITED, "response to no request of ours")
            return
        peer.last_used = self.clock.now()
        if not pending[1].done():
            pending[1].set_result((response.ok, response.payload))

    async def _serve_request(self, peer: Peer, request: Request, charge: int = 0) -> None:
        peer.last_used = self.clock.now()
        try:
            handler = self._handlers.get(request.protocol)
            if handler is None:
                response = Response(request.request_id, False, f"unknown protocol {request.protocol}".encode())
            else:
                try:
                    response = Response(request.request_id, True, await handler(peer.id, request.payload))
                except BcaiError as exc:
                    if exc.peer_fault:
                        self.penalize(peer.id, scoring.PENALTY_MALFORMED, str(exc))
                    response = Response(request.request_id, False, f"{exc.code}: {exc}".encode())
                except Exception:
                    log.exception("handler for %s failed", request.protocol)
                    response = Response(request.request_id, False, b"internal error")
            if len(response.payload) + 10 > self.config.max_frame:
                response = Response(request.request_id, False, b"response exceeds the frame limit")
            if (request.protocol in self._bulk_protocols and (not response.ok or len(response.payload) < BULK_FREE_BYTES)
                    and not self._take_token(peer)):
                return  # a cheap bulk ask is an ordinary message, over the limit: no answer
            # The answer is charged to the asker until it is queued: one that asks for more
            # than its receive budget while not reading the answers cannot keep up.
            size = len(response.payload)
            if peer.account.recv + size > self.budget.peer_recv_limit:
                self._evict(peer)
                return
            self.budget.make_room(size)
            if peer.closed:
                return
            self.budget.charge_recv(peer.account, size)
            charge += size
            await self._send_quietly(peer, response)
        finally:
            self.budget.release_recv(peer.account, charge)
            peer.requests_in_flight.release()

    async def _send_quietly(self, peer: Peer, message: Message) -> None:
        try:
            await peer.send(message, Priority.NORMAL)
        except ConnectionClosed:
            pass
        except FrameTooLarge as exc:
            log.warning("not sending to %r: %s", peer.id, exc)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
