"""Host behaviour on both transports: gossip delivery and isolation, request/response,
misbehaving peers (garbage, oversized frames, floods) disconnected and banned while the
node keeps working, bans expiring on an injected clock, bounded send queues."""

from __future__ import annotations

import asyncio
import struct

import pytest
from p2p_netkit import TRANSPORTS, Net, connect_all, eventually, run

from bcai.crypto import PrivateKey
from bcai.encoding import encode
from bcai.errors import (
    HandshakeFailed,
    InvalidGossip,
    PeerBanned,
    PeerNotConnected,
    RequestFailed,
    RequestTimeout,
)
from bcai.p2p import (
    TOPIC_BLOCKS,
    TOPIC_CONSENSUS,
    TOPIC_TXS,
    GossipMessage,
    Host,
    HostConfig,
    ManualClock,
    NodeId,
    NodeRecord,
    Priority,
    job_topic,
    perform_handshake,
)
from bcai.p2p.discovery import RECORDS_TOPIC
from bcai.p2p.peer import SendQueue
from bcai.p2p.tcp import TcpStream, _StreamProtocol
from bcai.p2p.transport import split_host_port
from bcai.p2p.wire import Publish, Request, Subscribe, encode_message


class Inbox:
    def __init__(self) -> None:
        self.got: list[GossipMessage] = []

    async def __call__(self, message: GossipMessage) -> None:
        self.got.append(message)


async def _line(net: Net, n: int, config: HostConfig = HostConfig()) -> list[Host]:
    hosts = [await net.host(f"n{i}", config) for i in range(n)]
    return hosts


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_gossip_reaches_every_subscriber_exactly_once(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        hosts = await _line(net, 8)
        inboxes = [Inbox() for _ in hosts]
        for host, inbox in zip(hosts, inboxes):
            await host.subscribe(TOPIC_BLOCKS, inbox)
        # A ring with chords: many paths, so duplicates arrive and must be suppressed.
        edges = [(i, (i + 1) % 8) for i in range(8)] + [(0, 4), (2, 6), (1, 5)]
        await connect_all(hosts, edges)
        await eventually(lambda: all(h.get_subscribers(TOPIC_BLOCKS) for h in hosts))
        ids = [await hosts[i].publish(TOPIC_BLOCKS, f"block {i}".encode()) for i in (0, 3)]
        await eventually(lambda: all(len(box.got) >= 2 for i, box in enumerate(inboxes) if i not in (0, 3)))
        await eventually(lambda: len(inboxes[0].got) == 1 and len(inboxes[3].got) == 1)
        await asyncio.sleep(0.05)  # let any duplicate land
        for i, box in enumerate(inboxes):
            expected = {ids[0], ids[1]} - ({ids[0]} if i == 0 else set()) - ({ids[1]} if i == 3 else set())
            assert sorted(m.message_id for m in box.got) == sorted(expected), f"node {i}"
        assert sum(h.metrics["duplicates"] for h in hosts) > 0
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_job_topic_never_reaches_non_subscribers(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        hosts = await _line(net, 5)
        topic = job_topic(42)
        boxes = [Inbox() for _ in hosts]
        members = (0, 1, 2)
        for i in members:
            await hosts[i].subscribe(topic, boxes[i])
        for i in (3, 4):
            await hosts[i].subscribe(TOPIC_TXS, boxes[i])
        await connect_all(hosts, [(a, b) for a in range(5) for b in range(a + 1, 5)])
        await eventually(lambda: len(hosts[0].get_subscribers(topic)) == 2)
        await hosts[0].publish(topic, b"model update")
        await eventually(lambda: len(boxes[1].got) == 1 and len(boxes[2].got) == 1)
        await asyncio.sleep(0.05)
        assert boxes[3].got == [] and boxes[4].got == []
        assert hosts[3].metrics["unsolicited"] == 0 and hosts[4].metrics["unsolicited"] == 0
        assert hosts[0].get_subscribers(topic) == sorted([hosts[1].node_id, hosts[2].node_id])
        await hosts[2].unsubscribe(topic)
        await eventually(lambda: hosts[0].get_subscribers(topic) == [hosts[1].node_id])
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_gossip_rejected_by_handler_is_not_forwarded(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        a, b, c = await _line(net, 3)
        got_c = Inbox()

        async def strict(message: GossipMessage) -> None:
            if message.data.startswith(b"bad"):
                raise InvalidGossip("not a block")

        await b.subscribe(TOPIC_BLOCKS, strict)
        await c.subscribe(TOPIC_BLOCKS, got_c)
        await connect_all([a, b, c], [(0, 1), (1, 2)])
        await eventually(lambda: b.get_subscribers(TOPIC_BLOCKS) == [c.node_id] and a.get_subscribers(TOPIC_BLOCKS))
        await a.publish(TOPIC_BLOCKS, b"bad block")
        await a.publish(TOPIC_BLOCKS, b"good block")
        await eventually(lambda: len(got_c.got) == 1)
        assert got_c.got[0].data == b"good block"
        assert b.scores.get_score(a.node_id, b.clock.now()) < 0
        await net.close()

    run(main)


def test_held_back_gossip_is_forwarded_only_when_the_handler_says_so() -> None:
    """A handler returning False keeps the message from being relayed at once; it goes on
    only through `Host.forward`, i.e. once the handler has checked it."""

    async def main() -> None:
        net = Net("memory")
        a, b, c = await _line(net, 3)
        got_c, held = Inbox(), []

        async def later(message: GossipMessage) -> bool:
            held.append(message)
            return False

        await b.subscribe(TOPIC_TXS, later)
        await c.subscribe(TOPIC_TXS, got_c)
        await connect_all([a, b, c], [(0, 1), (1, 2)])
        await eventually(lambda: b.get_subscribers(TOPIC_TXS) == [c.node_id] and a.get_subscribers(TOPIC_TXS))
        await a.publish(TOPIC_TXS, b"unchecked")
        await a.publish(TOPIC_TXS, b"checked")
        await eventually(lambda: len(held) == 2)
        await asyncio.sleep(0.1)
        assert got_c.got == []  # nothing relayed on arrival
        await b.forward(held[1])
        await eventually(lambda: len(got_c.got) == 1)
        assert got_c.got[0].data == b"checked" and got_c.got[0].source == b.node_id
        await net.close()

    run(main)


def test_droppable_gossip_is_paced_below_the_neighbours_rate_limit() -> None:
    """Whatever a node receives, it relays droppable gossip (txs) to each neighbour at no
    more than half the rate limit that neighbour applies: a flood to one node cannot get
    that node cut off by the others. Consensus gossip is never paced (nor dropped)."""

    async def main() -> None:
        net = Net("memory", ManualClock())  # no time passes: the buckets hold their bursts only
        lenient = HostConfig(rate_per_s=10_000, rate_burst=10_000)  # takes the flood in; relays at the default pace
        a = await net.host("flooder", HostConfig(rate_per_s=10_000, rate_burst=10_000, relay_per_s=10_000,
                                                 relay_burst=10_000))  # sends everything at once
        b = await net.host("relay", lenient)
        c = await net.host("neighbour", HostConfig())
        got_c, got_votes = Inbox(), Inbox()
        for host in (b, c):
            await host.subscribe(TOPIC_TXS, Inbox() if host is b else got_c)
            await host.subscribe(TOPIC_CONSENSUS, Inbox() if host is b else got_votes)
        await connect_all([a, b, c], [(0, 1), (1, 2)])
        await eventually(lambda: len(a.get_subscribers(TOPIC_TXS)) == 1 and len(b.get_subscribers(TOPIC_TXS)) == 1
                         and len(b.get_subscribers(TOPIC_CONSENSUS)) == 1)
        for i in range(300):
            await a.publish(TOPIC_TXS, b"tx %d" % i)
        for i in range(50):
            await a.publish(TOPIC_CONSENSUS, b"vote %d" % i)
        burst = HostConfig().relay_burst
        await eventually(lambda: len(got_votes.got) == 50 and len(got_c.got) == burst)
        await asyncio.sleep(0.1)
        assert len(got_c.got) == burst and b.metrics["paced"] == 300 - burst
        assert c.metrics["rate_limited"] == 0 and c.scores.get_score(b.node_id, c.clock.now()) == 0
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_request_response_errors_and_timeouts(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        a, b = await _line(net, 2)
        slow = asyncio.Event()

        async def echo(peer: NodeId, payload: bytes) -> bytes:
            assert peer == a.node_id
            return payload[::-1]

        async def never(peer: NodeId, payload: bytes) -> bytes:
            await slow.wait()
            return b""

        b.register_handler("test/echo", echo)
        b.register_handler("test/never", never)
        with pytest.raises(ValueError):
            b.register_handler("test/echo", echo)
        with pytest.raises(PeerNotConnected):
            await a.request(b.node_id, "test/echo", b"abc")
        for bad in ("records", "Upper", ""):
            with pytest.raises(InvalidGossip):
                await a.subscribe(bad, Inbox())
        with pytest.raises(InvalidGossip):
            await a.publish("blocks", bytes(a.config.max_frame))
        await a.connect(b.address, b.node_id)
        assert await a.request(b.node_id, "test/echo", b"abc") == b"cba"
        big = bytes(range(256)) * 8192
        assert await a.request(b.node_id, "test/echo", big) == big[::-1]
        with pytest.raises(RequestFailed, match="unknown protocol"):
            await a.request(b.node_id, "test/nothing", b"")
        with pytest.raises(RequestTimeout):
            await a.request(b.node_id, "test/never", b"", timeout=0.05)
        slow.set()  # the late answer arrives: counted, not held against b
        await eventually(lambda: a.metrics["late_responses"] == 1)
        assert a.scores.get_score(b.node_id, a.clock.now()) == 0
        await net.close()

    run(main)


async def _authenticated_raw(net: Net, host: Host, label: str):
    """A hostile peer: completes the handshake, then writes whatever it likes."""
    stream = await net.raw_dial(host.address)
    key = PrivateKey.from_label(label)
    channel = await perform_handshake(stream, key, host.config.network_id, host.node_id)
    return channel, NodeId.of(key.public_key)


async def _still_works(net: Net, host: Host) -> None:
    friend = await net.host(f"friend-{len(net.hosts)}")
    inbox = Inbox()
    await host.subscribe(TOPIC_CONSENSUS, inbox)
    await friend.connect(host.address, host.node_id)
    await eventually(lambda: friend.get_subscribers(TOPIC_CONSENSUS) == [host.node_id])
    await friend.publish(TOPIC_CONSENSUS, b"vote")
    await eventually(lambda: len(inbox.got) == 1)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_garbage_sender_is_banned_and_node_keeps_working(kind: str) -> None:
    async def main() -> None:
        net = Net(kind, ManualClock())
        host = await net.host("target")
        channel, attacker = await _authenticated_raw(net, host, "garbage")
        await eventually(lambda: attacker in host.peers)
        for i in range(10):
            try:
                await channel.send(b"\xff garbage %d" % i)
            except Exception:
                break
        await eventually(lambda: host.is_banned(attacker) and attacker not in host.peers)
        assert host.metrics["malformed"] >= 4
        # banned: a new connection with the same identity is dropped at once
        channel2, _ = await _authenticated_raw(net, host, "garbage")
        await asyncio.sleep(0.01)
        assert attacker not in host.peers
        with pytest.raises(PeerBanned):
            await host.connect(net.hosts[0].address, attacker)
        await _still_works(net, host)
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_oversized_frame_sender_is_banned_at_once(kind: str) -> None:
    async def main() -> None:
        net = Net(kind, ManualClock())
        host = await net.host("target")
        channel, attacker = await _authenticated_raw(net, host, "oversized")
        await eventually(lambda: attacker in host.peers)
        await channel.stream.write(struct.pack(">I", 200 * 1024 * 1024))
        await eventually(lambda: host.is_banned(attacker) and attacker not in host.peers)
        assert host.metrics["oversized_frames"] == 1
        await _still_works(net, host)
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_flood_at_10x_rate_limit_is_banned_and_ban_expires(kind: str) -> None:
    async def main() -> None:
        clock = ManualClock()
        config = HostConfig(rate_per_s=100, rate_burst=100, ban_seconds=60)
        net = Net(kind, clock)
        host = await net.host("target", config)
        inbox = Inbox()
        await host.subscribe(TOPIC_TXS, inbox)
        channel, attacker = await _authenticated_raw(net, host, "flooder")
        await eventually(lambda: attacker in host.peers)
        # 1,000 messages in 1 simulated second: 10x the limit.
        sent = 0
        for i in range(1000):
            if i % 100 == 0:
                clock.advance(0.1)
            try:
                await channel.send(encode_message(Publish(TOPIC_TXS, b"tx %d" % i)))
                sent += 1
            except Exception:
                break
        await eventually(lambda: host.is_banned(attacker) and attacker not in host.peers)
        assert host.metrics["rate_limited"] >= 20
        assert len(inbox.got) <= 200  # burst + one second of refill at most
        assert host.seen.max_size == config.seen_cache_size
        await _still_works(net, host)
        clock.advance(61)
        assert not host.is_banned(attacker)
        channel2, _ = await _authenticated_raw(net, host, "flooder")
        await eventually(lambda: attacker in host.peers)
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_unsolicited_topic_and_stray_responses_lower_the_score(kind: str) -> None:
    async def main() -> None:
        net = Net(kind, ManualClock())
        host = await net.host("target")
        channel, attacker = await _authenticated_raw(net, host, "stray")
        await eventually(lambda: attacker in host.peers)
        await channel.send(encode_message(Publish(job_topic("secret"), b"x")))
        await channel.send(bytes([5]) + (12345).to_bytes(8, "big") + b"\x00stray")
        await eventually(lambda: host.metrics["unsolicited"] == 2)
        assert host.scores.get_score(attacker, host.clock.now()) == -10
        await channel.send(encode_message(Request(1, "no/such", b"")))
        frame = await channel.recv()  # the hello
        while frame[0] != 5:
            frame = await channel.recv()
        assert frame[9] == 1 and b"unknown protocol" in bytes(frame)
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_dial_checks_the_expected_identity(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        a, b = await _line(net, 2)
        wrong = NodeId.of(PrivateKey.from_label("not b").public_key)
        with pytest.raises(HandshakeFailed):
            await a.connect(b.address, wrong)
        assert a.peers == []
        with pytest.raises(HandshakeFailed):
            await a.connect(a.address, a.node_id)
        with pytest.raises(HandshakeFailed):
            await a.connect(b.address, PrivateKey.from_label("not b").address)
        assert await a.connect(b.address, b.key.address) == b.node_id  # by account address
        a.disconnect(b.node_id)
        await eventually(lambda: a.peers == [] and b.peers == [])
        # both dial at once: one connection survives on both sides
        await asyncio.gather(a.connect(b.address, b.node_id), b.connect(a.address, a.node_id))
        await eventually(lambda: a.peers == [b.node_id] and b.peers == [a.node_id])
        await asyncio.sleep(0.02)
        assert a.peers == [b.node_id] and b.peers == [a.node_id]
        assert await a.request(b.node_id, "kad/find_node", encode({"target": a.node_id.raw}))
        await net.close()

    run(main)


def test_send_queue_blocks_consensus_and_drops_bulk_with_a_count() -> None:
    async def main() -> None:
        queue = SendQueue(max_bytes=10)
        assert await queue.put((b"x", b"x" * 7), Priority.BULK, drop_when_full=True)
        assert not await queue.put((b"y", b"y" * 7), Priority.BULK, drop_when_full=True)
        assert queue.dropped == 1
        assert await queue.put((b"c", b"c" * 7), Priority.CONSENSUS, drop_when_full=False)
        blocked = asyncio.ensure_future(queue.put((b"d", b"d" * 7), Priority.CONSENSUS, drop_when_full=False))
        await asyncio.sleep(0)
        assert not blocked.done()  # the producer waits, nothing is lost
        assert await queue.get() == (b"c", b"c" * 7)  # consensus first
        await asyncio.sleep(0)
        assert blocked.done() and blocked.result()
        assert await queue.get() == (b"d", b"d" * 7)
        assert await queue.get() == (b"x", b"x" * 7)
        assert queue.queued_bytes == 0

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_record_update_reaches_connected_peers(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        a, b = await _line(net, 2)
        await a.connect(b.address, b.node_id)
        await eventually(lambda: a.get_peer_record(b.node_id) is not None)
        b.update_record(roles=frozenset({"worker"}), capabilities={"gpus": 8})
        await eventually(lambda: a.get_peer_record(b.node_id).record.capabilities == {"gpus": 8})
        assert a.get_peer_record(b.node_id).record.seq > 1
        await net.close()

    run(main)


def test_restarted_node_record_replaces_the_one_peers_cached() -> None:
    """A record's sequence number starts from the wall clock, not at 1 on every start: a
    node that had updated its record and restarted (at a new address, with new
    capabilities) used to sign seq 1 again, which every peer holding its old, higher seq
    ignored until the cache evicted it."""
    async def main() -> None:
        net = Net("memory")
        watcher = await net.host("watcher")
        before = await net.host("restarting")
        before.update_record(capabilities={"gpus": 1})
        before.update_record(capabilities={"gpus": 2})
        await watcher.connect(before.address, before.node_id)
        await eventually(lambda: watcher.discovery.get_record(before.node_id) is not None)
        await before.stop()
        after = await net.host("restarting")  # same key, new address
        after.update_record(capabilities={"gpus": 8})
        assert after.address != before.address
        await watcher.connect(after.address, after.node_id)
        await eventually(lambda: watcher.discovery.get_record(after.node_id).record.address == after.address)
        assert watcher.discovery.get_record(after.node_id).record.capabilities == {"gpus": 8}
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_half_open_connections_are_capped(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        host = await net.host("target", HostConfig(max_inbound=3, handshake_timeout=5))
        silent = [await net.raw_dial(host.address) for _ in range(6)]
        await eventually(lambda: host.metrics["refused_inbound"] == 3)
        for stream in silent:
            stream.close()
        await eventually(lambda: host._handshaking == 0)
        await _still_works(net, host)
        await net.close()

    run(main)


def test_backpressure_blocks_consensus_publishers_and_sheds_txs_with_a_count() -> None:
    async def main() -> None:
        net = Net("memory")
        net.memory.pipe_limit = 32 * 1024
        config = HostConfig(queue_bytes=32 * 1024)
        a, b = await net.host("producer", config), await net.host("stalled", config)
        release = asyncio.Event()
        consensus = Inbox()

        async def stall(message: GossipMessage) -> None:
            await release.wait()  # b stops reading from a while this runs

        await b.subscribe(TOPIC_TXS, stall)
        await b.subscribe(TOPIC_CONSENSUS, consensus)
        await a.connect(b.address, b.node_id)
        await a.publish(TOPIC_TXS, b"the tx that stalls b")
        votes = [i.to_bytes(4, "big") + bytes(8 * 1024) for i in range(40)]  # 320 KiB >> buffers

        async def vote_all() -> None:
            for vote in votes:
                await a.publish(TOPIC_CONSENSUS, vote)

        producer = asyncio.ensure_future(vote_all())
        await asyncio.sleep(0.05)
        assert not producer.done()  # blocked, not dropping
        for i in range(20):
            await a.publish(TOPIC_TXS, b"tx %d" % i + bytes(8 * 1024))
        assert a.metrics["dropped"] > 0  # txs shed, and counted
        release.set()
        await asyncio.wait_for(producer, 5)
        await eventually(lambda: len(consensus.got) == len(votes))
        assert [m.data for m in consensus.got] == votes  # every vote, in order
        await net.close()

    run(main)


def test_invalid_copy_on_another_topic_does_not_suppress_the_real_message() -> None:
    """The seen-cache is per topic: a peer that replays a block's bytes on `txs` first (where
    they are rejected) used to get the real block dropped as a duplicate on `blocks`."""
    async def main() -> None:
        net = Net("memory")
        attacker, honest, target = await _line(net, 3)
        blocks = Inbox()

        async def reject_txs(message: GossipMessage) -> None:
            raise InvalidGossip("not a tx batch")

        await target.subscribe(TOPIC_TXS, reject_txs)
        await target.subscribe(TOPIC_BLOCKS, blocks)
        await connect_all([attacker, honest, target], [(0, 2), (1, 2)])
        await eventually(lambda: attacker.get_subscribers(TOPIC_TXS) and honest.get_subscribers(TOPIC_BLOCKS))
        await attacker.publish(TOPIC_TXS, b"block 7")
        await eventually(lambda: target.metrics["invalid_gossip"] == 1)
        await honest.publish(TOPIC_BLOCKS, b"block 7")
        await eventually(lambda: len(blocks.got) == 1)
        assert blocks.got[0].topic == TOPIC_BLOCKS and blocks.got[0].source == honest.node_id
        await honest.publish(TOPIC_BLOCKS, b"block 7")  # a true duplicate is still dropped
        await eventually(lambda: target.metrics["duplicates"] == 1)
        assert len(blocks.got) == 1
        await net.close()

    run(main)


def test_invalid_stale_record_gossip_is_not_relayed() -> None:
    """Each node's record is relayed once per sequence number: a peer replaying old records,
    or current ones once the seen-cache has forgotten them, used to have every node in the
    network relay each one again."""
    async def main() -> None:
        clock = ManualClock()
        net = Net("memory", clock)
        a, b, c = await _line(net, 3)
        await connect_all([a, b, c], [(0, 1), (1, 2)])
        far = PrivateKey.from_label("far away")
        old, new = (NodeRecord(far.public_key, "127.0.0.1:9", seq=s).sign(far, "bcai") for s in (1, 2))
        await a.publish(RECORDS_TOPIC, new.to_bytes())
        await eventually(lambda: c.discovery.get_record(new.node_id) == new)
        delivered = c.metrics["delivered"]
        await a.publish(RECORDS_TOPIC, old.to_bytes())  # stale at b: dropped there
        await eventually(lambda: b.metrics["stale_records"] == 1)
        clock.advance(b.config.seen_ttl + 1)
        await a.publish(RECORDS_TOPIC, new.to_bytes())  # relayed once already: dropped at b
        await eventually(lambda: b.metrics["stale_records"] == 2)
        other = PrivateKey.from_label("other")
        marker = NodeRecord(other.public_key, "127.0.0.1:10", seq=1).sign(other, "bcai")
        await a.publish(RECORDS_TOPIC, marker.to_bytes())  # new at b: relayed to c
        await eventually(lambda: c.discovery.get_record(marker.node_id) == marker)
        assert c.metrics["delivered"] == delivered + 1
        assert c.discovery.get_record(new.node_id) == new
        await net.close()

    run(main)


def test_invalid_half_open_connections_from_one_host_leave_room_for_others() -> None:
    """Handshakes in progress are capped per remote host: one machine's silent sockets
    used to take every inbound slot (`max_inbound`), so nobody else could connect until
    they timed out (and then they could simply reconnect)."""
    async def main() -> None:
        net = Net("tcp")
        host = await net.host("target", HostConfig(max_inbound=16, max_handshakes_per_ip=2, handshake_timeout=5))
        silent = [await net.raw_dial(host.address) for _ in range(16)]  # all from 127.0.0.1
        await eventually(lambda: host.metrics["refused_inbound"] == 14)
        assert host._handshaking == 2
        # another machine (127.0.0.2 reaches the same loopback listener) still gets in
        ip, port = split_host_port(host.address)
        _, protocol = await asyncio.get_running_loop().create_connection(
            _StreamProtocol, ip, port, local_addr=("127.0.0.2", 0))
        key = PrivateKey.from_label("elsewhere")
        await perform_handshake(TcpStream(protocol), key, "bcai", host.node_id)
        await eventually(lambda: NodeId.of(key.public_key) in host.peers)
        for stream in silent:
            stream.close()
        await eventually(lambda: host._handshaking == 0 and not host._handshaking_from)
        await net.close()

    run(main)


def test_invalid_peer_that_never_reads_is_cut_off_and_stops_blocking_publishers() -> None:
    """Consensus and blocks are never dropped: their producer waits for room in each
    subscriber's queue. A subscriber that stops reading used to block every publish on the
    topic forever (for all peers: forwarding goes one peer after another); after
    `send_timeout` without room it is now disconnected and publishing goes on."""
    async def main() -> None:
        net = Net("memory")
        net.memory.pipe_limit = 16 * 1024
        host = await net.host("target", HostConfig(queue_bytes=32 * 1024, send_timeout=0.2))
        honest = await net.host("honest")
        got = Inbox()
        await honest.subscribe(TOPIC_BLOCKS, got)
        await honest.connect(host.address, host.node_id)
        key = PrivateKey.from_label("deaf")
        channel = await perform_handshake(await net.raw_dial(host.address), key, "bcai", host.node_id)
        await channel.send(encode_message(Subscribe(TOPIC_BLOCKS, True)))  # then reads nothing
        await eventually(lambda: len(host.get_subscribers(TOPIC_BLOCKS)) == 2)
        blocks = [i.to_bytes(4, "big") + bytes(8 * 1024) for i in range(30)]  # 240 KiB >> buffers
        for block in blocks:
            await asyncio.wait_for(host.publish(TOPIC_BLOCKS, block), 2)
        assert NodeId.of(key.public_key) not in host.peers
        await eventually(lambda: len(got.got) == len(blocks))
        channel.close()
        await net.close()

    run(main)
