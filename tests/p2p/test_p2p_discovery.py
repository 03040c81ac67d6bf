"""Kademlia over in-memory hosts: bootstrap, lookups among 60 nodes, capability queries."""

from __future__ import annotations

import pytest
from p2p_netkit import Net, run

from bcai.errors import InvalidNodeRecord
from bcai.p2p import CapabilityQuery, HostConfig, NodeId
from bcai.p2p.kademlia import compute_distance

N = 50


async def _network(n: int = N):
    net = Net("memory")
    config = HostConfig(k=8, alpha=3)
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
