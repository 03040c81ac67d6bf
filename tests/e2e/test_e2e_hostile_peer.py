"""A hostile peer against a real 4-validator devnet (issue #4).

One validator's p2p port is attacked by: a plaintext client, a handshake that claims a key
it does not hold, a dial that expects another node's identity, an authenticated peer sending
garbage frames, one announcing an oversized frame (> 16 MiB), one sending unauthenticated
bytes after the handshake, and one flooding valid-looking tx gossip at 10x the rate limit.
Each is cut off (and banned where the design says: garbage, oversized, flood), while the
node keeps committing, keeps serving its API, commits a later tx on all four, and its RSS
stays bounded. The node's view is read from its `/metrics` (`bcai_p2p_events_total`).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nacl.bindings as sodium
import pytest

from bcai.crypto import PrivateKey
from bcai.crypto.keystore import KeyStore
from bcai.encoding import encode
from bcai.errors import ConnectionClosed, HandshakeFailed, PeerIdentityMismatch
from bcai.ledger import Transfer, encode_tx
from bcai.node import devnet
from bcai.node.devnet import DevnetNode
from bcai.p2p import NodeId, TcpTransport, perform_handshake
from bcai.p2p.gossip import TOPIC_TXS
from bcai.p2p.secure import HANDSHAKE_DOMAIN, MAGIC, MAX_FRAME, TAG_SIZE, SecureChannel, compute_session_keys
from bcai.p2p.transport import ByteStream
from bcai.p2p.wire import Publish, encode_message
from bcai.sdk import Client

pytestmark = pytest.mark.e2e
RATE_LIMIT_PER_S = 100  # the node's default p2p rate limit (P2PConfig.rate_limit_per_s)


def get_json(url: str) -> dict:
    return httpx.get(url, timeout=20).json()


def p2p_events(api_url: str) -> dict[str, float]:
    text = httpx.get(f"{api_url}/metrics", timeout=20).text
    return {m[1]: float(m[2]) for m in re.finditer(r'^bcai_p2p_events_total\{event="(\w+)"\} (\S+)$', text, re.M)}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def wait_until(predicate, timeout_s: float, what: str, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {detail()}"
        time.sleep(0.1)


async def closed_by_peer(stream: ByteStream, timeout: float = 10.0) -> bool:
    """True once the other side hangs up (EOF or reset) within `timeout`; what it sent
    before (its handshake proof, its hello) is read and dropped."""

    async def drain() -> None:
        while True:
            await stream.read_exactly(1)

    try:
        await asyncio.wait_for(drain(), timeout)
    except ConnectionClosed:
        return True
    except asyncio.TimeoutError:
        return False
    return False


async def forged_handshake(address: str, network_id: str, claimed: PrivateKey, signer: PrivateKey) -> ByteStream:
    """Run the handshake claiming `claimed`'s public key but signing with `signer`'s."""
    stream = await TcpTransport().dial(address)
    secret = os.urandom(32)
    ours = sodium.crypto_scalarmult_base(secret)
    await stream.write(MAGIC + ours)
    hello = bytes(await stream.read_exactly(len(MAGIC) + 32))
    theirs = hello[len(MAGIC):]
    send_key, recv_key, challenge = compute_session_keys(ours, theirs, sodium.crypto_scalarmult(secret, theirs))
    channel = SecureChannel(stream, send_key, recv_key, claimed.public_key)
    await channel.send(claimed.public_key.raw + signer.sign(HANDSHAKE_DOMAIN, network_id, challenge))
    return stream


async def is_refused_after_handshake(address: str, network_id: str, key: PrivateKey, node: NodeId) -> bool:
    """A banned peer completes the handshake, then is hung up on before any message."""
    channel = await perform_handshake(await TcpTransport().dial(address), key, network_id, node)
    try:
        await asyncio.wait_for(channel.recv(), 10)  # a welcome peer gets the node's Hello first
    except ConnectionClosed:
        return True
    finally:
        channel.close()
    return False


async def attack(target: DevnetNode, node: NodeId, chain_id: str, other: NodeId) -> dict[str, NodeId]:
    host, port = target.p2p_address.rsplit(":", 1)
    # 1. plaintext: the node answers with its hello, sees no magic, hangs up
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n".ljust(len(MAGIC) + 32, b"\x00"))  # exactly a hello's size
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        assert received.startswith(MAGIC) and len(received) == len(MAGIC) + 32

    # 2. a handshake claiming another validator's key, signed with ours: refused
    impostor = PrivateKey.from_label("hostile-impostor")
    victim_key = PrivateKey.from_label("hostile-claimed")  # its public key is what we claim
    assert await closed_by_peer(await forged_handshake(target.p2p_address, chain_id, victim_key, impostor))
    # ... and a correct proof for the wrong network (chain id): refused too
    assert await closed_by_peer(await forged_handshake(target.p2p_address, "another-chain", impostor, impostor))

    # 3. we meant to reach another node: the dialer refuses the node's real identity
    with pytest.raises(PeerIdentityMismatch):
        await perform_handshake(await TcpTransport().dial(target.p2p_address), impostor, chain_id, other)
    with pytest.raises(HandshakeFailed):  # and a wrong network id fails both ways
        await perform_handshake(await TcpTransport().dial(target.p2p_address), impostor, "another-chain", node)

    banned: dict[str, NodeId] = {}
    transport = TcpTransport()
    for kind in ("garbage", "oversized", "unauthenticated", "flood"):
        key = PrivateKey.from_label(f"hostile-{kind}")
        channel = await perform_handshake(await transport.dial(target.p2p_address), key, chain_id, node)
        banned[kind] = NodeId.of(key.public_key)
        try:
            if kind == "garbage":  # authenticated frames that are not protocol messages
                for _ in range(10):
                    await channel.send(os.urandom(300))
            elif kind == "oversized":  # a length prefix one byte over the 16 MiB limit
                await channel.stream.write(struct.pack(">I", MAX_FRAME + TAG_SIZE + 1) + b"\x00" * 64)
            elif kind == "unauthenticated":  # bytes not sealed with the session key
                await channel.stream.write(struct.pack(">I", 100) + os.urandom(100))
            else:  # valid-looking tx gossip (well-formed signed txs, unfunded) at 10x the rate limit
                sender = PrivateKey.from_label("hostile-flood-sender")
                to = PrivateKey.from_label("hostile-flood-recipient").address
                for burst in range(20):  # 20 bursts of 100 messages every 0.1 s = 1000 / s
                    for i in range(RATE_LIMIT_PER_S):
                        nonce = burst * RATE_LIMIT_PER_S + i
                        tx = encode_tx(sender, nonce, 1, chain_id, Transfer(to, 1))
                        await channel.send(encode_message(Publish(TOPIC_TXS, encode([tx]))))
                    await asyncio.sleep(0.1)
            assert await closed_by_peer(channel.stream), f"{kind}: still connected"
        except ConnectionClosed:
            pass  # hung up on us mid-send: that is the point
        finally:
            channel.close()
    del banned["unauthenticated"]  # a forged frame costs a penalty and the connection, not a ban
    for kind, peer in banned.items():
        key = PrivateKey.from_label(f"hostile-{kind}")
        assert await is_refused_after_handshake(target.p2p_address, chain_id, key, node), f"{kind} not banned"
    # a well-behaved newcomer is still welcome (the node did not stop accepting)
    assert not await is_refused_after_handshake(target.p2p_address, chain_id, PrivateKey.from_label("hostile-nice"), node)
    return banned


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[DevnetNode]]:
    home = tmp_path / "devnet"
    started = devnet.up(home, 4)
    try:
        yield started
    finally:
        devnet.down(home)


def test_hostile_peer_is_cut_off_and_the_node_keeps_working(nodes: list[DevnetNode], tmp_path: Path) -> None:
    target = nodes[0]
    assert target.pid is not None
    status = get_json(f"{target.api_url}/status")
    node, chain_id = NodeId.parse(status["node_id"]), status["chain_id"]
    other = NodeId.parse(get_json(f"{nodes[1].api_url}/status")["node_id"])
    rss_before = rss_kib(target.pid)
    height_before = status["height"]
    before = p2p_events(target.api_url)

    asyncio.run(asyncio.wait_for(attack(target, node, chain_id, other), 120))

    after = p2p_events(target.api_url)

    def grew(event: str) -> float:
        return after.get(event, 0.0) - before.get(event, 0.0)

    assert grew("bans") >= 3  # garbage, oversized, flood
    assert grew("handshake_failures") >= 3  # plaintext, forged key, wrong network
    assert grew("malformed") >= 4 and grew("oversized_frames") >= 1 and grew("bad_frames") >= 1
    assert grew("rate_limited") >= 1
    # the node kept committing and serving; its peers are the three validators again
    wait_until(lambda: get_json(f"{target.api_url}/status")["height"] >= height_before + 3, 30, "more commits")
    wait_until(lambda: get_json(f"{target.api_url}/status")["peers"] == 3, 30, "the three validators as peers",
               lambda: f"(peers: {[get_json(f'{n.api_url}/status')['peers'] for n in nodes]}, p2p events: "
                       f"{[p2p_events(n.api_url) for n in nodes]})")
    for n in nodes[1:]:  # the honest validators, never attacked, banned nobody
        assert p2p_events(n.api_url).get("bans", 0.0) == 0, (n.name, p2p_events(n.api_url))
    with Client(target.api_url, key=KeyStore(tmp_path / "devnet").load("client")) as client:
        recipient = PrivateKey.from_label("hostile-after-recipient").address
        receipt = client.wait_for_tx(client.transfer(recipient, 777), timeout_s=30)
    assert receipt["status"] == "committed"
    for n in nodes:
        wait_until(lambda: get_json(f"{n.api_url}/status")["height"] >= receipt["height"], 30, f"{n.name} to commit")
        assert get_json(f"{n.api_url}/accounts/{recipient}")["balance"] == 777
    rss_after = rss_kib(target.pid)
    assert rss_after - rss_before < 96 * 1024, (rss_before, rss_after)  # no 16 MiB+ buffers kept, no backlog
