"""The memory a hostile or slow peer can make a host hold is budgeted in bytes: per peer
on the receive side (`peer_recv_bytes`), for all peers together (`buffer_bytes`, a body
queued for several peers counted once) and for ciphertext being written (`seal_bytes`).
Over a peer's limit we stop reading it or, if it asks for answers faster than it reads
them, cut it off; over the total, whoever holds the most is cut off; a peer that reads
nothing for `send_timeout` is cut off even when nothing more is sent to it."""

from __future__ import annotations

import asyncio
import struct

from p2p_netkit import Net, eventually, run
from test_p2p_host import Inbox, _authenticated_raw, _still_works

from bcai.crypto import PrivateKey
from bcai.errors import ConnectionClosed, HandshakeFailed
from bcai.p2p import TOPIC_BLOCKS, HostConfig, NodeId, NodeRecord, perform_handshake
from bcai.p2p.wire import Hello, Publish, Request, Subscribe, encode_message

MiB = 1024 * 1024


def test_invalid_peer_asking_for_more_than_it_reads_is_cut_off() -> None:
    """16 requests for 512 KiB answers, none read: the answers used to pile up in the
    request tasks (16 x up to 16 MiB per peer) until `send_timeout`."""

    async def main() -> None:
        net = Net("memory")
        net.memory.pipe_limit = 64 * 1024
        config = HostConfig(max_frame=MiB, peer_recv_bytes=2 * MiB, queue_bytes=512 * 1024, send_timeout=60)
        host = await net.host("target", config)

        async def big(peer: NodeId, payload: bytes) -> bytes:
            return bytes(512 * 1024)

        host.register_handler("test/big", big)
        channel, attacker = await _authenticated_raw(net, host, "greedy")
        await eventually(lambda: attacker in host.peers)
        for i in range(16):
            try:
                await channel.send(encode_message(Request(i + 1, "test/big", b"")))
            except ConnectionClosed:
                break  # cut off already
        await eventually(lambda: attacker not in host.peers)
        assert host.metrics["over_budget"] == 1
        await eventually(lambda: host.budget.total == 0)  # everything it held came back
        assert host.budget.peak_total <= config.buffer_bytes
        await _still_works(net, host)
        await net.close()

    run(main)


def test_invalid_half_sent_frames_from_many_peers_stay_within_the_total() -> None:
    """Each peer announces a frame of the maximum size and sends no more of it: every one
    of them used to cost a max-size frame buffer, for as long as it liked, with no limit on
    their sum. Over `buffer_bytes` the peer holding the most is cut off."""

    async def main() -> None:
        net = Net("memory")
        config = HostConfig(max_frame=MiB, peer_recv_bytes=MiB + 16, buffer_bytes=5 * MiB // 2)
        host = await net.host("target", config)
        attackers = []
        for i in range(3):
            channel, node = await _authenticated_raw(net, host, f"slow-frame{i}")
            await eventually(lambda: node in host.peers and host.get_peer_record(node) is None)
            await channel.stream.write(struct.pack(">I", MiB))  # then nothing
            attackers.append((channel, node))
        await eventually(lambda: len([n for _, n in attackers if n in host.peers]) == 2)
        assert host.metrics["over_budget"] == 1
        assert host.budget.peak_total <= config.buffer_bytes
        await _still_works(net, host)
        await net.close()

    run(main)


def test_invalid_peer_that_reads_nothing_is_cut_off_without_more_traffic() -> None:
    """A frame stuck in a writer because the peer stopped reading used to stay there (and
    keep the peer's slot) for ever unless something more was sent to it."""

    async def main() -> None:
        net = Net("memory")
        net.memory.pipe_limit = 16 * 1024
        host = await net.host("target", HostConfig(send_timeout=0.3))
        channel, deaf = await _authenticated_raw(net, host, "deaf")
        await channel.send(encode_message(Subscribe(TOPIC_BLOCKS, True)))
        await eventually(lambda: host.get_subscribers(TOPIC_BLOCKS) == [deaf])
        for i in range(2):  # (the in-memory pipe takes a whole first write, as a socket buffer would)
            await host.publish(TOPIC_BLOCKS, bytes([i]) * 256 * 1024)
        await eventually(lambda: deaf not in host.peers, timeout=5)
        assert host.budget.sealed == 0
        await net.close()

    run(main)


def test_a_broadcast_seals_within_the_sealing_pool() -> None:
    """A block sent to every peer is encrypted once per peer: with many peers that used to
    be up to two max-size ciphertexts per peer at once. Writers wait for `seal_bytes`."""

    async def main() -> None:
        net = Net("memory")
        config = HostConfig(seal_bytes=5 * MiB // 2)
        host = await net.host("hub", config)
        boxes = []
        for i in range(6):
            peer = await net.host(f"spoke{i}")
            boxes.append(Inbox())
            await peer.subscribe(TOPIC_BLOCKS, boxes[-1])
            await peer.connect(host.address, host.node_id)
        await eventually(lambda: len(host.get_subscribers(TOPIC_BLOCKS)) == 6)
        for i in range(3):
            await host.publish(TOPIC_BLOCKS, bytes([i]) * MiB)
        await eventually(lambda: all(len(box.got) == 3 for box in boxes), timeout=20)
        assert MiB < host.budget.peak_sealed <= config.seal_bytes
        # queued for 6 peers, a block is in memory once and counted once
        assert host.budget.peak_total < 4 * MiB
        assert host.budget.sealed == 0
        await net.close()

    run(main)


def test_invalid_silent_peer_after_the_handshake_is_cut_off() -> None:
    """A caller that completes the handshake and then sends nothing, not even its hello,
    used to keep its inbound slot (`max_inbound`) for ever: 128 free keys filled them all."""

    async def main() -> None:
        net = Net("memory")
        host = await net.host("target", HostConfig(handshake_timeout=0.3))
        channel, silent = await _authenticated_raw(net, host, "silent")
        await eventually(lambda: silent in host.peers)
        await eventually(lambda: silent not in host.peers, timeout=5)
        assert host.metrics["no_hello"] == 1
        await _still_works(net, host)  # a peer that says hello stays
        await asyncio.sleep(0.5)
        assert len(host.peers) == 1
        await net.close()

    run(main)


def test_invalid_frame_trickled_in_is_cut_off() -> None:
    """A frame announced and then sent a byte at a time held its (up to 16 MiB) buffer and
    budget for as long as the sender liked: its body must now arrive within `send_timeout`."""

    async def main() -> None:
        net = Net("memory")
        host = await net.host("target", HostConfig(send_timeout=0.3))
        channel, slow = await _authenticated_raw(net, host, "trickle")
        await channel.send(encode_message(Subscribe(TOPIC_BLOCKS, True)))
        await eventually(lambda: host.get_subscribers(TOPIC_BLOCKS) == [slow])
        await channel.stream.write(struct.pack(">I", MiB) + b"x")
        await eventually(lambda: host.budget.total >= MiB)
        for _ in range(20):
            if slow not in host.peers:
                break
            await channel.stream.write(b"x")
            await asyncio.sleep(0.05)
        assert slow not in host.peers and host.budget.total == 0
        await net.close()

    run(main)


def test_invalid_one_machine_cannot_take_every_inbound_slot() -> None:
    """Handshakes in progress were capped per remote host, established connections were
    not: one machine with free keys could hold all `max_inbound` slots. At most
    `max_inbound_per_ip` now (loopback exempt: local test networks share 127.0.0.1)."""

    async def main() -> None:
        net = Net("memory")
        host = await net.host("target", HostConfig(max_inbound_per_ip=3))

        async def dial_from(source: str, label: str) -> NodeId:
            stream = await net.memory.transport(source).dial(host.address)
            key = PrivateKey.from_label(label)
            try:
                channel = await perform_handshake(stream, key, "bcai", host.node_id)
            except HandshakeFailed:  # refused
                return NodeId.of(key.public_key)
            await channel.send(encode_message(Hello(
                NodeRecord(key.public_key, f"{source}:1").sign(key, "bcai").to_bytes(), ())))
            return NodeId.of(key.public_key)

        crowd = [await dial_from("10.1.1.1", f"crowd{i}") for i in range(5)]
        await eventually(lambda: host.metrics["refused_inbound"] == 2)
        await eventually(lambda: len([n for n in crowd if n in host.peers]) == 3)
        other = await dial_from("10.1.1.2", "elsewhere")
        local = [await dial_from("127.0.0.1", f"local{i}") for i in range(5)]
        await eventually(lambda: other in host.peers and all(n in host.peers for n in local))
        assert host.metrics["refused_inbound"] == 2
        await net.close()

    run(main)


def test_invalid_max_size_frames_back_to_back_hold_one_frame_at_a_time() -> None:
    """Frames just under the maximum, one after the other (duplicates of one gossip message:
    no penalty, only the rate limit): the host holds one of them at a time, charged from
    its length prefix on, and keeps serving others."""

    async def main() -> None:
        net = Net("memory")
        config = HostConfig(max_frame=MiB, peer_recv_bytes=MiB + 16)
        host = await net.host("target", config)
        inbox = Inbox()
        await host.subscribe(TOPIC_BLOCKS, inbox)
        channel, sender = await _authenticated_raw(net, host, "big-frames")
        frame = encode_message(Publish(TOPIC_BLOCKS, bytes(MiB - 64)))
        assert len(frame) + 16 <= MiB + 16
        for _ in range(30):
            await channel.send(frame)
        await eventually(lambda: host.metrics["duplicates"] == 29)
        assert len(inbox.got) == 1 and sender in host.peers
        assert host.budget.peak_total <= config.peer_recv_bytes + 64 * 1024  # one frame (and our hello)
        await eventually(lambda: host.budget.total == 0)
        await _still_works(net, host)
        await net.close()

    run(main)
