"""Resource limits beyond memory buffers: a per-peer byte rate (back-pressure, nothing
dropped, our own requests' answers free), a cap on the connections we dial (idle ones a
lookup opened are closed), and each connection's socket buffers bounded and charged to the
host's connection pool."""

from __future__ import annotations

import asyncio
import socket

import pytest
from p2p_netkit import Net, eventually, run
from test_p2p_host import Inbox, _authenticated_raw

from bcai.crypto import PrivateKey
from bcai.errors import HandshakeFailed, OutboundLimitReached
from bcai.p2p import (
    TOPIC_CONSENSUS,
    ContentExchange,
    Host,
    HostConfig,
    ManualClock,
    NodeId,
    NodeRecord,
    TcpTransport,
    perform_handshake,
    store_object,
)
from bcai.p2p.kademlia import compute_distance
from bcai.p2p.wire import Hello, Publish, encode_message
from bcai.store import MemoryContentStore

MiB = 1024 * 1024
FRAME = 512 * 1024  # each consensus message the flooder sends


def test_invalid_peer_within_the_message_rate_but_over_the_byte_rate_is_slowed_not_dropped() -> None:
    """40 consensus messages of 512 KiB: well within 100 msg/s, but 20 MiB against a byte
    rate of 1 MiB/s (burst 2 MiB). They all used to be read at once. Now, with the clock
    stopped, the host reads the burst (and the frame that overdraws it) and then nothing
    more from that peer, while it serves others; as the clock moves every message arrives,
    none dropped, the sender not penalised."""

    async def main() -> None:
        clock = ManualClock()
        net = Net("memory", clock)
        host = await net.host("target", HostConfig(recv_bytes_per_s=MiB, recv_bytes_burst=2 * MiB))
        inbox = Inbox()
        await host.subscribe(TOPIC_CONSENSUS, inbox)
        channel, flooder = await _authenticated_raw(net, host, "byte-flooder")
        key = PrivateKey.from_label("byte-flooder")
        await channel.send(encode_message(Hello(NodeRecord(key.public_key, "127.0.0.1:1").sign(key, "bcai").to_bytes(), ())))
        await eventually(lambda: host.get_peer_record(flooder) is not None)

        async def flood() -> None:
            for i in range(40):
                await channel.send(encode_message(Publish(TOPIC_CONSENSUS, i.to_bytes(4, "big") + bytes(FRAME))))

        sender = asyncio.ensure_future(flood())
        await eventually(lambda: host.metrics["recv_throttled"] >= 1 and len(inbox.got) >= 4)
        friend = await net.host("friend")  # another peer's vote gets through meanwhile
        await friend.connect(host.address, host.node_id)
        await eventually(lambda: friend.get_subscribers(TOPIC_CONSENSUS) == [host.node_id])
        await friend.publish(TOPIC_CONSENSUS, b"vote")
        await eventually(lambda: any(m.source == friend.node_id for m in inbox.got))
        from_flooder = [m for m in inbox.got if m.source == flooder]
        assert len(from_flooder) <= 5  # 2 MiB of burst, plus the frame that overdrew it
        assert not sender.done()  # it is held up: its frames wait in its socket
        clock.advance(1.0)  # 1 MiB more: two more frames
        await eventually(lambda: len([m for m in inbox.got if m.source == flooder]) >= len(from_flooder) + 2)
        assert len([m for m in inbox.got if m.source == flooder]) <= len(from_flooder) + 3
        for _ in range(25):
            clock.advance(1.0)
            await asyncio.sleep(0.01)
        await eventually(lambda: len([m for m in inbox.got if m.source == flooder]) == 40, timeout=20)
        await sender
        assert flooder in host.peers and host.scores.get_score(flooder, clock.now()) == 0
        assert host.metrics["rate_limited"] == 0 and host.metrics["dropped"] == 0
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", ["memory", "tcp"])
def test_answers_to_our_own_requests_are_not_charged_to_the_byte_rate(kind: str) -> None:
    """A 24 MiB fetch from one provider, with a byte rate of 1 MiB/s and the clock stopped:
    the chunks are answers to our requests, so the fetch runs at full speed."""

    async def main() -> None:
        net = Net(kind, ManualClock())
        config = HostConfig(recv_bytes_per_s=MiB, recv_bytes_burst=MiB)
        fetcher, provider = await net.host("fetcher", config), await net.host("provider", config)
        provider_store, fetcher_store = MemoryContentStore(), MemoryContentStore()
        data = bytes(range(256)) * (24 * MiB // 256)
        object_id = store_object(provider_store, data)
        ContentExchange(provider, provider_store)
        await fetcher.connect(provider.address, provider.node_id)
        fetched = await asyncio.wait_for(ContentExchange(fetcher, fetcher_store).fetch_bytes(object_id, [provider.node_id]), 30)
        assert fetched == data
        assert fetcher.metrics["recv_throttled"] == 0
        await net.close()

    run(main)


async def _lookup_network(n: int, config: HostConfig, clock: ManualClock | None = None) -> tuple[Net, list]:
    net = Net("memory", clock or ManualClock())
    hosts = [await net.host(f"cap{i}", config) for i in range(n)]
    boot = f"{hosts[0].node_id}@{hosts[0].address}"
    for host in hosts[1:]:
        assert await host.discovery.bootstrap([boot]) == 1
    return net, hosts


def test_outbound_connections_stay_under_the_cap_during_many_lookups() -> None:
    """Every connection a lookup opened used to stay open: 30 lookups among 40 nodes left
    a node connected to nearly all of them. With `max_outbound` = 6 the count never passes
    6 (sampled on every turn of the loop), lookups still find the k closest, and the
    connections the node chose itself are never closed to make room."""

    async def main() -> None:
        base = HostConfig(k=6, alpha=3, lookup_ids_per_host=100)  # every node is at 127.0.0.1
        net, hosts = await _lookup_network(40, base)
        seeker = await net.host("seeker", HostConfig(k=6, alpha=3, lookup_ids_per_host=100, max_outbound=6))
        friend = hosts[7]
        await seeker.connect(friend.address, friend.node_id)  # kept
        assert await seeker.discovery.bootstrap([f"{hosts[0].node_id}@{hosts[0].address}"]) == 1
        peak = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, seeker._count_outbound())
                await asyncio.sleep(0)

        sampler = asyncio.ensure_future(sample())
        every = {h.node_id for h in hosts}
        for i in range(30):
            target = NodeId(bytes([i * 8]) * 32)
            result = await seeker.discovery.lookup(target)
            truth = sorted(every, key=lambda n: compute_distance(n, target))[:6]
            assert [r.node_id for r in result] == truth
            assert friend.node_id in seeker.peers
        sampling = False
        await sampler
        assert 1 < peak <= 6
        assert seeker.metrics["lookup_closed"] > 0
        await net.close()

    run(main, timeout=120)


def test_idle_lookup_connections_are_closed_and_chosen_ones_kept() -> None:
    async def main() -> None:
        clock = ManualClock()
        config = HostConfig(k=6, alpha=3, lookup_ids_per_host=100, lookup_idle_s=30)
        net, hosts = await _lookup_network(12, config, clock)
        seeker = await net.host("seeker", config)
        await seeker.connect(hosts[1].address, hosts[1].node_id)
        await seeker.discovery.lookup(NodeId(b"\x99" * 32))
        opened = [n for n in seeker.peers if n != hosts[1].node_id]
        assert len(opened) >= 3
        promoted = opened[0]
        await seeker.connect("unused:0", promoted)  # already connected: now kept
        clock.advance(10)
        assert seeker.close_idle_connections() == 0  # not idle for long enough yet
        clock.advance(25)
        assert seeker.close_idle_connections() == len(opened) - 1
        await eventually(lambda: set(seeker.peers) == {hosts[1].node_id, promoted})
        await net.close()

    run(main)


def test_connect_beyond_the_outbound_cap_fails_when_nothing_is_idle() -> None:
    async def main() -> None:
        net = Net("memory")
        hub = await net.host("hub", HostConfig(max_outbound=2))
        others = [await net.host(f"o{i}") for i in range(4)]
        await hub.connect(others[0].address, others[0].node_id)
        await hub.connect(others[1].address, others[1].node_id, keep=False)
        # a lookup-style connection makes room; then the cap holds
        await hub.connect(others[2].address, others[2].node_id)
        assert hub.metrics["lookup_closed"] == 1
        with pytest.raises(OutboundLimitReached):
            await hub.connect(others[3].address, others[3].node_id)
        await eventually(lambda: hub.peers == sorted([others[0].node_id, others[2].node_id]))
        await others[3].connect(hub.address, hub.node_id)  # inbound is another limit
        await net.close()

    run(main)


def test_invalid_many_connections_stay_within_the_connection_pool() -> None:
    """Each connection's buffers (socket buffers, here the in-memory pipes) were charged
    nowhere: N connections cost N times that, with only the inbound count capping N. Now
    each holds its worst case of `conn_bytes` from accept to close; inbound ones also leave
    room for the dials we may still make. Callers past it are refused, nothing leaks."""

    async def main() -> None:
        net = Net("memory")
        net.memory.pipe_limit = 64 * 1024  # 128 KiB per connection
        host = await net.host("target", HostConfig(conn_bytes=MiB, max_outbound=2))
        cost = host.transport.connection_bytes
        assert cost == 128 * 1024
        with pytest.raises(ValueError, match="max_outbound"):  # no inbound connection would ever fit
            Host(PrivateKey.from_label("cramped"), net.transport(), HostConfig(conn_bytes=MiB, max_outbound=8))
        admitted, refused = [], 0
        for i in range(10):
            key = PrivateKey.from_label(f"many{i}")
            try:
                channel = await perform_handshake(await net.raw_dial(host.address), key, "bcai", host.node_id, timeout=2)
                await channel.send(encode_message(Hello(NodeRecord(key.public_key, "127.0.0.1:1").sign(key, "bcai").to_bytes(), ())))
                admitted.append((channel, NodeId.of(key.public_key)))
            except HandshakeFailed:
                refused += 1
            assert host.budget.connections <= MiB - 2 * cost  # the two outbound slots stay free
        assert (len(admitted), refused) == (6, 4)
        assert host.metrics["conn_budget_full"] == 4
        await eventually(lambda: all(node in host.peers for _, node in admitted))
        friend = await net.host("friend")
        await host.connect(friend.address, friend.node_id)  # the reserve: our own dials still work
        assert host.budget.connections == 7 * cost and host.budget.peak_connections <= MiB
        for channel, _ in admitted:
            channel.close()
        await eventually(lambda: len(host.peers) == 1)
        assert host.budget.connections == cost
        host.disconnect(friend.node_id)
        await eventually(lambda: host.budget.connections == 0)
        await net.close()

    run(main)


def test_tcp_sockets_get_bounded_kernel_buffers() -> None:
    """Sockets were left to autotuning: up to tcp_rmem's maximum (32 MiB here) of receive
    buffer per connection. Both ends now ask for `socket_buffer` (Linux doubles it)."""

    async def main() -> None:
        net = Net("tcp")
        size = 128 * 1024
        transport = TcpTransport(socket_buffer=size)
        host = await net.host("target")
        stream = await transport.dial(host.address)
        sock = stream._transport.get_extra_info("socket")  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 2 * size
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * size
        assert transport.connection_bytes < TcpTransport().connection_bytes < 5 * MiB
        await eventually(lambda: host.budget.connections == TcpTransport().connection_bytes)  # half-open
        stream.close()
        await eventually(lambda: host.budget.connections == 0, timeout=15)
        await net.close()

    run(main)
