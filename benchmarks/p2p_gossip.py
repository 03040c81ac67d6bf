"""Gossip propagation time to every node of a 20-node network, one OS process per node,
real TCP on loopback.

Each node subscribes to `blocks` and connects to its ring neighbour plus two random
peers (fixed seed). Node 0 publishes messages at a steady pace; every node stamps the
arrival (wall clock, shared by all processes on this machine). For each message we take
the time until the *last* node had it. Side by side, the same run measures the raw
asyncio loopback one-way latency between two processes (ping-pong / 2) and multiplies it
by the graph's diameter: the floor for a store-and-forward flood on this machine.

Usage: python benchmarks/p2p_gossip.py [--nodes 20] [--messages 30] [--size 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import statistics
import time
from collections import deque

from bcai.crypto import PrivateKey
from bcai.p2p import GossipMessage, Host, NodeId, TcpTransport


def node_main(index: int, conn) -> None:
    async def main() -> None:
        host = Host(PrivateKey.from_label(f"gossip-bench-{index}"), TcpTransport())
        await host.start("127.0.0.1:0")
        arrivals: dict[str, float] = {}

        async def on_block(message: GossipMessage) -> None:
            arrivals[message.message_id.hex()] = time.time()

        await host.subscribe("blocks", on_block)
        conn.send((host.node_id.raw, host.address))
        loop = asyncio.get_running_loop()
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "connect":
                for raw, address in arg:
                    await host.connect(address, NodeId(raw))
                conn.send(len(host.peers))
            elif command == "publish":
                count, size, interval = arg
                sent = {}
                for i in range(count):
                    data = i.to_bytes(4, "big") + bytes(size - 4)
                    start = time.time()
                    sent[(await host.publish("blocks", data)).hex()] = start
                    await asyncio.sleep(interval)
                conn.send(sent)
            elif command == "report":
                conn.send(arrivals)
            else:
                break
        await host.stop()

    asyncio.run(main())


async def run_in_one_process(count: int, dials: dict[int, list[int]], messages: int, size: int, interval: float) -> list[float]:
    """The same network as hosts in one event loop (still real TCP): protocol cost without
    20 processes competing for the machine's cores."""
    hosts = []
    arrivals: list[dict[str, float]] = []
    for i in range(count):
        host = Host(PrivateKey.from_label(f"gossip-bench-{i}"), TcpTransport())
        await host.start("127.0.0.1:0")
        seen: dict[str, float] = {}

        async def on_block(message: GossipMessage, seen: dict[str, float] = seen) -> None:
            seen[message.message_id.hex()] = time.perf_counter()

        await host.subscribe("blocks", on_block)
        hosts.append(host)
        arrivals.append(seen)
    for i, targets in dials.items():
        for j in targets:
            await hosts[i].connect(hosts[j].address, hosts[j].node_id)
    await asyncio.sleep(0.5)
    to_all = []
    for n in range(messages):
        start = time.perf_counter()
        message_id = (await hosts[0].publish("blocks", n.to_bytes(4, "big") + bytes(size - 4))).hex()
        while not all(message_id in a for a in arrivals[1:]):
            await asyncio.sleep(0.0005)
        to_all.append(max(a[message_id] for a in arrivals[1:]) - start)
        await asyncio.sleep(interval)
    for host in hosts:
        await host.stop()
    return to_all


def compute_diameter(edges: dict[int, set[int]]) -> int:
    worst = 0
    for source in edges:
        depth = {source: 0}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for nxt in edges[node]:
                if nxt not in depth:
                    depth[nxt] = depth[node] + 1
                    queue.append(nxt)
        worst = max(worst, max(depth.values()))
    return worst


def echo_server(conn) -> None:
    async def main() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        server.close()

    asyncio.run(main())


async def measure_raw_one_way(port: int, size: int, rounds: int = 200) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = bytes(size)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        await reader.readexactly(size)
        samples.append((time.perf_counter() - start) / 2)
    writer.close()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for i in range(args.nodes):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=node_main, args=(i, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    nodes = [pipe.recv() for pipe in pipes]
    rng = random.Random(7)
    edges: dict[int, set[int]] = {i: set() for i in range(args.nodes)}
    dials: dict[int, list[int]] = {i: [] for i in range(args.nodes)}
    for i in range(args.nodes):
        for j in {(i + 1) % args.nodes, *rng.sample(range(args.nodes), 2)} - {i}:
            if j not in edges[i]:
                edges[i].add(j)
                edges[j].add(i)
                dials[i].append(j)
    for i, pipe in enumerate(pipes):
        pipe.send(("connect", [nodes[j] for j in dials[i]]))
    degrees = [pipe.recv() for pipe in pipes]
    time.sleep(1.0)  # let hellos and subscriptions settle everywhere

    pipes[0].send(("publish", (args.messages, args.size, args.interval)))
    sent = pipes[0].recv()
    time.sleep(1.0)
    for pipe in pipes:
        pipe.send(("report", None))
    reports = [pipe.recv() for pipe in pipes]
    for pipe in pipes:
        pipe.send(("stop", None))
    for proc in procs:
        proc.join(10)

    to_all, per_node = [], []
    missing = 0
    for message, start in sent.items():
        arrivals = [r.get(message) for r in reports[1:]]
        missing += sum(1 for a in arrivals if a is None)
        got = [a - start for a in arrivals if a is not None]
        per_node.extend(got)
        if len(got) == args.nodes - 1:
            to_all.append(max(got))

    parent, child = ctx.Pipe()
    echo = ctx.Process(target=echo_server, args=(child,))
    echo.start()
    one_way = asyncio.run(measure_raw_one_way(parent.recv(), args.size))
    parent.send("stop")
    echo.join()

    one_process = asyncio.run(run_in_one_process(args.nodes, dials, args.messages, args.size, args.interval))
    diameter = compute_diameter(edges)
    ms = lambda xs, q: 1000 * statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 1 else 1000 * xs[0]  # noqa: E731
    print(f"{args.nodes} node processes, TCP loopback, degree {min(degrees)}-{max(degrees)}, diameter {diameter}; "
          f"{len(sent)} messages of {args.size} B, one every {args.interval * 1000:.0f} ms")
    print(f"deliveries missing              : {missing} (of {len(sent) * (args.nodes - 1)})")
    print(f"time to reach all nodes  p50/p95: {ms(to_all, 50):7.2f} / {ms(to_all, 95):7.2f} ms")
    print(f"time to reach one node   p50/p95: {ms(per_node, 50):7.2f} / {ms(per_node, 95):7.2f} ms")
    print(f"same network in one process, to all nodes p50/p95: {ms(one_process, 50):7.2f} / {ms(one_process, 95):7.2f} ms")
    print(f"raw asyncio one-way latency p50 : {one_way * 1000:7.3f} ms  x diameter {diameter} = "
          f"{one_way * diameter * 1000:.2f} ms (floor)")
    print(f"ratio p50 to-all / floor        : {statistics.median(to_all) / (one_way * diameter):7.1f}")


if __name__ == "__main__":
    main()
