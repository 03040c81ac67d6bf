"""Block sync from several peers (`sync_blocks`): a peer whose blocks fail verification is
penalised and disconnected, and the same heights are asked of the next peer."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from p2p_netkit import Net, eventually, run

from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidBlock, InvalidCertificate
from bcai.node import Node, init_home
from bcai.node.chainspec import load_chain_spec
from bcai.node.config import P2PConfig
from bcai.p2p import BlockSyncServer, Host, HostConfig, ManualClock, NodeId, sync_blocks


def _chain(n: int) -> dict[int, bytes]:
    """Toy blocks [height, parent hash]: enough for the client to check the chain links."""
    blocks, parent = {}, bytes(32)
    for height in range(1, n + 1):
        blocks[height] = encode([height, parent])
        parent = hashlib.sha256(blocks[height]).digest()
    return blocks


class Follower:
    """What the node does with synced blocks: check each (here: height and parent hash;
    the node checks the commit certificate too) and apply it, or raise a peer fault."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, NodeId]] = []
        self.tip = bytes(32)

    async def apply(self, peer: NodeId, height: int, raw: bytes) -> bool:
        try:
            got, parent = decode(raw)
        except (BcaiError, ValueError, TypeError) as exc:
            raise InvalidBlock(f"undecodable block: {exc}") from None
        if got != height:
            raise InvalidBlock(f"asked for height {height}, got {got}")
        if parent != self.tip:
            raise InvalidBlock(f"block {height} does not extend our chain")
        self.applied.append((height, peer))
        self.tip = hashlib.sha256(raw).digest()
        return True


async def _servers(net: Net, chain: dict[int, bytes], bad: dict[str, dict[int, bytes]]) -> tuple[Host, dict[str, Host]]:
    client = await net.host("lagging")
    servers = {}
    for label, tampered in [*bad.items(), ("honest", {})]:
        served = {**chain, **tampered}
        servers[label] = await net.host(label)
        BlockSyncServer(served.get).register(servers[label])
        await client.connect(servers[label].address, servers[label].node_id)
    return client, servers


def test_invalid_synced_blocks_get_the_peer_cut_off_and_the_heights_asked_elsewhere() -> None:
    """Block sync used to take whatever its one chosen peer sent: a block that failed
    verification cost that peer nothing (a 1-point penalty at most), and the node waited
    30 s before trying again, maybe with the same peer. Now the peer is penalised
    (`PENALTY_BAD_BLOCK`: banned and disconnected) and the heights are asked of the next."""

    async def main() -> None:
        net = Net("memory", ManualClock())
        chain = _chain(150)
        bad = {
            "wrong-parent": {70: encode([70, bytes(32)])},
            "wrong-height": {71: chain[72]},
            "undecodable": {71: b"\xff\xfe"},
            "forked": {1: encode([1, b"\x01" * 32])},
        }
        client, servers = await _servers(net, chain, bad)
        follower = Follower()
        order = [servers[label].node_id for label in ("wrong-parent", "wrong-height", "undecodable", "honest")]
        assert await sync_blocks(client, order, 1, 150, follower.apply) == 151
        assert [h for h, _ in follower.applied] == list(range(1, 151))
        sources = dict(follower.applied)
        assert sources[1] == sources[69] == servers["wrong-parent"].node_id  # good blocks are kept
        assert sources[70] == servers["wrong-height"].node_id  # its bad block is 71
        assert {sources[h] for h in range(71, 151)} == {servers["honest"].node_id}
        for label in ("wrong-parent", "wrong-height", "undecodable"):
            node = servers[label].node_id
            assert client.is_banned(node), label
        await eventually(lambda: client.peers == sorted([servers["forked"].node_id, servers["honest"].node_id]))
        assert client.metrics["bad_blocks"] == 3

        # a fork from height 1: nothing applied from it, then the honest peer is asked
        fresh = Follower()
        forked, honest = servers["forked"].node_id, servers["honest"].node_id
        assert await sync_blocks(client, [forked, honest], 1, 10, fresh.apply) == 11
        assert fresh.applied == [(h, honest) for h in range(1, 11)] and client.is_banned(forked)
        await net.close()

    run(main)


def test_slow_or_empty_sync_peers_are_skipped_without_penalty() -> None:
    async def main() -> None:
        net = Net("memory")
        chain = _chain(20)
        client = await net.host("lagging", HostConfig(request_timeout=0.2))
        short, slow, honest = [await net.host(label) for label in ("short", "slow", "honest2")]
        BlockSyncServer({h: chain[h] for h in range(1, 6)}.get).register(short)  # has only 5 blocks
        BlockSyncServer(chain.get).register(honest)
        stuck = asyncio.Event()

        async def never(peer: NodeId, payload: bytes) -> bytes:
            await stuck.wait()
            return b""

        slow.register_handler("sync/blocks", never)
        for server in (short, slow, honest):
            await client.connect(server.address, server.node_id)
        follower = Follower()
        assert await sync_blocks(client, [short.node_id, slow.node_id, honest.node_id], 1, 20, follower.apply) == 21
        assert [p for _, p in follower.applied] == [short.node_id] * 5 + [honest.node_id] * 15
        assert client.metrics["penalties"] == 0 and len(client.peers) == 3
        stuck.set()
        await net.close()

    run(main)


def test_invalid_blocks_a_node_syncs_are_refused_with_the_engines_verdict(tmp_path: Path) -> None:
    """The node's `apply` for `sync_blocks`: each block goes to the engine and the sync
    waits for its verdict, so a block that does not decode, is not at the height asked
    for, or carries another block's commit certificate is a peer fault (the peer gets
    banned by `sync_blocks`); a good one is applied. It used to enqueue a peer's blocks
    and poll the height for 30 s, blind to why nothing moved."""

    async def produce() -> list[bytes]:
        node = Node(tmp_path / "validator")
        await node.start()
        try:
            while node.app.state.height < 3:
                await asyncio.sleep(0.02)
            return [node._get_block_bytes(h) for h in (1, 2, 3)]
        finally:
            await node.stop()

    async def follow(blocks: list[bytes]) -> None:
        node = Node(tmp_path / "follower")
        await node.start()
        peer = NodeId(b"\x07" * 32)
        try:
            with pytest.raises(InvalidBlock, match="does not decode"):
                await node._apply_synced(peer, 1, b"\xff\xfe")
            with pytest.raises(InvalidBlock, match="asked for block 1"):
                await node._apply_synced(peer, 1, blocks[1])
            first, second = decode(blocks[0]), decode(blocks[1])
            first[1] = second[1]  # block 2's certificate on block 1
            with pytest.raises(InvalidCertificate):
                await node._apply_synced(peer, 1, encode(first))
            assert node.app.state.height == 0
            assert await node._apply_synced(peer, 1, blocks[0]) and node.app.state.height == 1
            assert await node._apply_synced(peer, 1, blocks[0])  # committed already: nothing to do
            assert await node._apply_synced(peer, 2, blocks[1]) and node.app.state.height == 2
        finally:
            await node.stop()

    init_home(tmp_path / "validator", "validator", ("validator",), "bcai-sync", p2p=P2PConfig(port=0))
    init_home(tmp_path / "follower", "follower", ("client",), spec=load_chain_spec(tmp_path / "validator"),
              p2p=P2PConfig(port=0))
    asyncio.run(follow(asyncio.run(produce())))
