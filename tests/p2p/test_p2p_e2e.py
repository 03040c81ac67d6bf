"""Real processes over loopback TCP: gossip across processes, and a hostile peer
(plaintext, garbage, oversized frames, a 10x flood) is cut off while the node keeps
working with bounded memory."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from p2p_netkit import eventually, run

from bcai.crypto import PrivateKey
from bcai.p2p import Host, NodeId, TcpTransport, perform_handshake
from bcai.p2p.secure import MAGIC
from bcai.p2p.wire import Publish, encode_message

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).with_name("p2p_node_proc.py")


class Proc:
    def __init__(self, label: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
        self.popen = subprocess.Popen([sys.executable, str(SCRIPT), label], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, text=True)
        info = json.loads(self.popen.stdout.readline())
        self.id, self.address = NodeId.parse(info["id"]), info["address"]

    def stop(self) -> None:
        self.popen.stdin.close()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()


@pytest.fixture
def procs():
    started = [Proc(f"e2e{i}") for i in range(3)]
    yield started
    for proc in started:
        proc.stop()


async def _stats(host: Host, proc: Proc) -> dict:
    return json.loads(await host.request(proc.id, "test/stats", b""))


def test_gossip_crosses_processes_exactly_once(procs) -> None:
    async def main() -> None:
        me = Host(PrivateKey.from_label("e2e-driver"), TcpTransport())
        await me.start()
        for proc in procs:
            await me.connect(proc.address, proc.id)
        # a line of processes 0 - 1 - 2, plus 0 - 2: two paths to node 2
        for a, b in [(0, 1), (1, 2), (0, 2)]:
            await me.request(procs[a].id, "test/connect", f"{procs[b].id}@{procs[b].address}".encode())
        me.disconnect(procs[1].id)
        me.disconnect(procs[2].id)
        await eventually(lambda: me.peers == [procs[0].id])
        await eventually(lambda: me.get_subscribers("blocks") == [procs[0].id])
        message_id = await me.publish("blocks", b"block from the driver")
        for proc in procs[1:]:
            await me.connect(proc.address, proc.id)

        async def counts() -> list[int]:
            return [(await _stats(me, p))["received"].get(message_id.hex(), 0) for p in procs]

        for _ in range(200):
            if await counts() == [1, 1, 1]:
                break
            await asyncio.sleep(0.02)
        assert await counts() == [1, 1, 1]
        await me.stop()

    run(main)


def test_hostile_peer_is_cut_off_and_node_keeps_working(procs) -> None:
    async def main() -> None:
        target = procs[0]
        host, port = target.address.rsplit(":", 1)
        # plaintext: refused
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"\x00" * 40)
            sock.settimeout(5)
            assert sock.recv(100).startswith(MAGIC)
            assert sock.recv(100) == b""  # closed on us
        me = Host(PrivateKey.from_label("e2e-observer"), TcpTransport())
        await me.start()
        await me.connect(target.address, target.id)
        base_rss = (await _stats(me, target))["maxrss_kib"]
        transport = TcpTransport()
        attackers = {}
        for attack in ("garbage", "oversized", "flood"):
            key = PrivateKey.from_label(f"attacker-{attack}")
            channel = await perform_handshake(await transport.dial(target.address), key, "bcai", target.id)
            attackers[attack] = str(NodeId.of(key.public_key))
            try:
                if attack == "garbage":
                    for _ in range(10):
                        await channel.send(os.urandom(200))
                elif attack == "oversized":
                    await channel.stream.write(struct.pack(">I", 1 << 31))
                else:
                    for i in range(3000):
                        await channel.send(encode_message(Publish("blocks", b"spam %d" % i)))
            except Exception:
                pass  # the target hung up on us: that is the point
        for _ in range(200):
            stats = await _stats(me, target)
            if set(attackers.values()) <= set(stats["banned"]):
                break
            await asyncio.sleep(0.02)
        assert set(attackers.values()) <= set(stats["banned"])
        assert not set(attackers.values()) & set(stats["peers"])
        assert stats["maxrss_kib"] - base_rss < 64 * 1024  # no 2 GiB allocation, no backlog
        alive = (await me.publish("blocks", b"still alive")).hex()
        for _ in range(100):
            if alive in (await _stats(me, target))["received"]:
                break
            await asyncio.sleep(0.02)
        assert (await _stats(me, target))["received"].get(alive) == 1
        await me.stop()

    run(main)
