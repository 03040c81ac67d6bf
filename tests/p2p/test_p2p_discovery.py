"""Kademlia over in-memory hosts: bootstrap, lookups among 60 nodes, capability queries."""

from __future__ import annotations

import asyncio

import pytest
from p2p_netkit import Net, connect_all, eventually, run

from bcai.crypto import PrivateKey
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidNodeRecord
from bcai.p2p import CapabilityQuery, HostConfig, ManualClock, NodeId, NodeRecord, SignedNodeRecord
from bcai.p2p.kademlia import compute_distance

N = 50


async def _network(n: int = N):
    net = Net("memory")
    config = HostConfig(k=8, alpha=3, lookup_ids_per_host=n)  # every node is at 127.0.0.1
    hosts = []
    for i in range(n):
        caps = {"cpus": 8, "memory_mb": 16384, "gpus": 8 if i % 10 == 3 else (2 if i % 10 == 5 else 0)}
        roles = frozenset({"worker"}) if caps["gpus"] else frozenset({"validator"})
        hosts.append(await net.host(f"kad{i}", config, roles=roles, capabilities=caps))
    boot = f"{hosts[0].node_id}@{hosts[0].address}"
    for host in hosts[1:]:
        assert await host.discovery.bootstrap([boot]) == 1
    return net, hosts


def test_lookup_and_capability_query_among_fifty_nodes() -> None:
    async def main() -> None:
        net, hosts = await _network()
        every = {h.node_id for h in hosts}
        # Routing tables filled by the joins: nodes know far more than the bootstrap.
        assert min(len(h.discovery.table) for h in hosts[1:]) >= 8
        for seeker, target in [(5, 49), (17, 2), (42, 30), (49, 1)]:
            found = await hosts[seeker].discovery.find_node(hosts[target].node_id)
            assert found is not None and found.record.address == hosts[target].address
        # a lookup of an id nobody has returns the k closest real nodes
        target = NodeId(b"\x42" * 32)
        result = await hosts[9].discovery.lookup(target)
        truth = sorted(every - {hosts[9].node_id}, key=lambda n: compute_distance(n, target))[:8]
        assert [r.node_id for r in result] == truth

        gpu_nodes = sorted(h.node_id for i, h in enumerate(hosts) if i % 10 == 3)
        seeker = hosts[27]
        found = await seeker.discovery.find_nodes(CapabilityQuery({"gpus": 4}))
        assert sorted(r.node_id for r in found) == gpu_nodes
        assert all(r.capabilities["gpus"] >= 4 for r in found)
        workers = await seeker.discovery.find_nodes(CapabilityQuery({"gpus": 1}, frozenset({"worker"})))
        assert len(workers) == 10
        with pytest.raises(InvalidNodeRecord):
            CapabilityQuery({"gpus": -1.5})  # type: ignore[dict-item]
        await net.close()

    run(main)


def test_invalid_bootstrap_addresses() -> None:
    async def main() -> None:
        net = Net("memory")
        host = await net.host("lonely")
        other = await net.host("other")
        with pytest.raises(InvalidNodeRecord):
            await host.discovery.bootstrap(["not-an-address"])
        # unreachable or wrong identity: counted as not answered, nothing breaks
        wrong = f"{host.node_id}@{other.address}"
        assert await host.discovery.bootstrap([wrong, f"{other.node_id}@127.0.0.1:1"]) == 0
        assert await host.discovery.bootstrap([f"{other.node_id}@{other.address}"]) == 1
        await net.close()

    run(main)


def _far_record(label: str, address: str = "127.0.0.1:9", seq: int = 1) -> SignedNodeRecord:
    key = PrivateKey.from_label(label)
    return NodeRecord(key.public_key, address, seq=seq).sign(key, "bcai")


def test_invalid_record_flood_is_bounded_and_stale_records_expire() -> None:
    """The node-record cache used to keep up to 10,000 records for ever: a flood of fresh
    signed records (keys are free) pushed out every honest one, and records of nodes long
    gone were served to capability queries indefinitely. It is bounded by
    `record_cache_size` (oldest heard first out), records not heard of for `record_ttl`
    expire, and the records of connected peers and routing-table entries are kept."""

    async def main() -> None:
        clock = ManualClock()
        net = Net("memory", clock)
        config = HostConfig(record_cache_size=100, record_ttl=60, k=8)
        host = await net.host("cache", config)
        friend = await net.host("friend")
        await host.connect(friend.address, friend.node_id)
        await eventually(lambda: host.discovery.get_record(friend.node_id) is not None)
        flood = [_far_record(f"sybil{i}") for i in range(400)]
        for signed in flood:
            host.discovery.process_record(signed)
            clock.advance(0.01)
        assert len(host.discovery.records) == 100
        assert host.discovery.get_record(friend.node_id) is not None  # connected: kept
        in_table = [s for s in flood if host.discovery.table.get(s.node_id) is not None]
        # the longest unheard went first (bar the table's)
        assert all(host.discovery.get_record(s.node_id) is None for s in flood[:300] if s not in in_table)
        assert host.discovery.get_record(flood[-1].node_id) == flood[-1]
        assert in_table and all(host.discovery.get_record(s.node_id) is not None for s in in_table)
        # heard again: fresh again
        clock.advance(59)
        host.discovery.process_record(flood[-2])
        clock.advance(2)  # the rest were last heard more than 60 s ago
        assert host.discovery.get_record(flood[-2].node_id) == flood[-2]
        stale = [s for s in flood[:-2] if host.discovery.table.get(s.node_id) is None]
        assert all(host.discovery.get_record(s.node_id) is None for s in stale)
        assert host.discovery.get_record(friend.node_id) is not None
        found = await host.discovery.find_nodes(CapabilityQuery(), ask_peers=0)
        assert {r.node_id for r in found} <= {host.node_id, friend.node_id, flood[-2].node_id} | {
            s.node_id for s in in_table}
        await net.close()

    run(main)


def test_live_nodes_re_announce_before_their_records_expire() -> None:
    """With records expiring, every host re-signs and re-announces its record every third
    of `record_ttl`, so a live node is never forgotten by nodes it is not connected to."""

    async def main() -> None:
        net = Net("memory")
        config = HostConfig(record_ttl=0.6)
        a, b, c = [await net.host(label, config) for label in ("far-a", "relay-b", "far-c")]
        await connect_all([a, b, c], [(0, 1), (1, 2)])
        await a.discovery.announce()
        await eventually(lambda: c.discovery.get_record(a.node_id) is not None)
        first = c.discovery.get_record(a.node_id).record.seq
        await asyncio.sleep(1.5)  # over twice the ttl
        assert c.discovery.get_record(a.node_id) is not None
        assert c.discovery.get_record(a.node_id).record.seq > first
        await net.close()

    run(main)


async def _victim(net: Net, address: str) -> list[int]:
    """A listener on the in-memory network that counts the streams opened to it."""
    dials: list[int] = []

    async def count(stream) -> None:  # type: ignore[no-untyped-def]
        dials.append(1)
        stream.close()

    await net.memory.transport().listen(address, count)
    return dials


async def _hostile_answers(net: Net, seeker_config: HostConfig, addresses: list[str], forged: bool = False):
    """A seeker connected to one hostile node that answers FIND_NODE with fresh signed
    records (keys are free) at `addresses` instead of real nodes."""
    seeker = await net.host("seeker", seeker_config)
    hostile = await net.host("hostile")
    fakes = [_far_record(f"fake{i}", address) for i, address in enumerate(addresses)]
    if forged:  # a record of someone else's key with our own signature on it
        mine = PrivateKey.from_label("forger")
        victim_key = PrivateKey.from_label("fake0").public_key
        body = NodeRecord(victim_key, addresses[0], seq=2)
        fakes[0] = SignedNodeRecord(body, mine.sign("node-record", "bcai", encode(body.to_obj())))

    async def lie(peer: NodeId, payload: bytes) -> bytes:
        return encode([s.to_bytes() for s in fakes])

    hostile.register_handler("kad/find_node", lie, replace=True)
    await seeker.connect(hostile.address, hostile.node_id)
    return seeker, hostile


def test_invalid_lookup_answers_cannot_point_us_at_a_victim() -> None:
    """A peer answering FIND_NODE with records of ids it made up, all at one victim's
    address, used to make every lookup dial the victim once per id (reflection). A lookup
    now takes at most `lookup_ids_per_host` ids at one host (2)."""

    async def main() -> None:
        net = Net("memory")
        dials = await _victim(net, "10.9.9.9:7")
        seeker, hostile = await _hostile_answers(net, HostConfig(k=20), ["10.9.9.9:7"] * 20)
        await seeker.discovery.lookup(NodeId(b"\x42" * 32))
        assert len(dials) == 2
        assert seeker.scores.get_score(hostile.node_id, seeker.clock.now()) == 0  # nothing provably false
        await seeker.discovery.lookup(NodeId(b"\x43" * 32))
        assert len(dials) == 4  # at most 2 a lookup, and lookups are ours to start
        await net.close()

    run(main)


@pytest.mark.parametrize("config, dials", [(HostConfig(k=8), 9), (HostConfig(k=20, lookup_max_dials=6), 6)])
def test_invalid_lookup_dials_are_capped(config: HostConfig, dials: int) -> None:
    """Made-up ids at 20 distinct addresses: a lookup takes only the k + 1 records of an
    answer closest to the target, and dials at most `lookup_max_dials` of them."""

    async def main() -> None:
        net = Net("memory")
        addresses = [f"10.0.{i}.1:7" for i in range(20)]
        victims = [await _victim(net, address) for address in addresses]
        seeker, _ = await _hostile_answers(net, config, addresses)
        await seeker.discovery.lookup(NodeId(b"\x42" * 32))
        assert sum(len(v) for v in victims) == dials
        await net.close()

    run(main)


def test_invalid_forged_record_in_a_lookup_answer_is_never_dialed() -> None:
    async def main() -> None:
        net = Net("memory")
        dials = await _victim(net, "10.9.9.9:7")
        seeker, hostile = await _hostile_answers(net, HostConfig(), ["10.9.9.9:7"], forged=True)
        await seeker.discovery.lookup(NodeId(b"\x42" * 32))
        assert dials == [] and seeker.scores.get_score(hostile.node_id, seeker.clock.now()) < 0
        await net.close()

    run(main)


def test_invalid_capability_query_flood_is_charged_by_the_records_it_scans() -> None:
    """A capability query costs a scan of every cached record (up to 10,000, 32 conditions
    each) and used to cost the asker one message of its rate limit, like a ping: one peer
    could keep a node's CPU busy. It now costs a token per 500 records scanned."""

    async def main() -> None:
        clock = ManualClock()
        net = Net("memory", clock)
        host = await net.host("answerer")
        for i in range(2000):
            host.discovery.process_record(_far_record(f"cached{i}", f"10.{i // 250}.{i % 250}.1:1"))
        asker = await net.host("asker")
        await asker.connect(host.address, host.node_id)
        query = encode(CapabilityQuery().to_obj())
        answers = await asyncio.gather(
            *(asker.request(host.node_id, "kad/find_capable", query, timeout=2) for _ in range(100)),
            return_exceptions=True)
        answered = sum(1 for a in answers if not isinstance(a, BaseException) and decode(a))
        assert 0 < answered <= HostConfig().rate_burst / 5  # 2,000 records: 5 tokens a query
        await eventually(lambda: host.is_banned(asker.node_id))
        await net.close()

    run(main)
