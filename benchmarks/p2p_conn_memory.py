"""What N connections can make one host hold: host RSS and kernel socket memory.

A host (its own process, TCP on loopback) subscribes to `blocks` with a handler that
never returns, so nothing it is sent gets consumed. N authenticated peers connect, say
hello and each push PUSH gossip messages of 1 MiB. After 3 s the host reports its RSS
growth, the bytes queued in its sockets' kernel receive buffers and the sum of their
limits (`ss -tm`: skmem r and rb), and its connection pool (`host.budget.connections`,
absent before the pool existed). Run it against two source trees (PYTHONPATH) to compare.

Usage: python benchmarks/p2p_conn_memory.py [N 64] [PUSH 8]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import subprocess
import sys
from typing import Any

MIB = 1024 * 1024


def get_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def get_kernel_mib(port: int) -> tuple[float, float]:
    """(bytes queued, buffer limits) of the established sockets on local `port`, in MiB."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    queued = sum(int(x) for x in re.findall(r"skmem:\(r(\d+)", out))
    limits = sum(int(x) for x in re.findall(r",rb(\d+)", out))
    return queued / MIB, limits / MIB


def serve(results: Any, commands: Any) -> None:
    from bcai.crypto import PrivateKey
    from bcai.p2p import Host, HostConfig, TcpTransport, tune_allocator

    tune_allocator()

    async def main() -> None:
        config = HostConfig(max_inbound=256, rate_per_s=10_000, rate_burst=10_000)
        host = Host(PrivateKey.from_label("target"), TcpTransport(), config)

        async def stuck(message: Any) -> None:
            await asyncio.sleep(3600)

        await host.start("127.0.0.1:0")
        await host.subscribe("blocks", stuck)
        before = get_rss_mib()
        results.put((host.address, str(host.node_id)))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, commands.get)
        queued, limits = get_kernel_mib(int(host.address.rsplit(":", 1)[1]))
        results.put((len(host.peers), before, get_rss_mib(), queued, limits, getattr(host.budget, "connections", None)))
        await loop.run_in_executor(None, commands.get)

    asyncio.run(main())


async def push_from_peers(address: str, node_hex: str, n: int, push: int) -> list[asyncio.Task[None]]:
    from bcai.crypto import PrivateKey
    from bcai.p2p import NodeId, NodeRecord, TcpTransport, perform_handshake
    from bcai.p2p.wire import Hello, Publish, encode_message

    node = NodeId(bytes.fromhex(node_hex))
    tasks = []
    for i in range(n):
        key = PrivateKey.from_label(f"peer{i}")
        channel = await perform_handshake(await TcpTransport().dial(address), key, "bcai", node)
        record = NodeRecord(key.public_key, "127.0.0.1:1").sign(key, "bcai").to_bytes()
        await channel.send(encode_message(Hello(record, ())))

        async def send_all(channel: Any = channel, i: int = i) -> None:
            for j in range(push):
                await channel.send(encode_message(Publish("blocks", bytes([i % 256, j % 256]) + bytes(MIB))))

        tasks.append(asyncio.ensure_future(send_all()))
    await asyncio.sleep(3)  # let what can flow, flow
    return tasks


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    push = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    ctx = mp.get_context("spawn")
    results, commands = ctx.Queue(), ctx.Queue()
    server = ctx.Process(target=serve, args=(results, commands))
    server.start()
    address, node_hex = results.get()

    async def run() -> None:
        tasks = await push_from_peers(address, node_hex, n, push)
        commands.put("measure")
        peers, before, after, queued, limits, pool = await asyncio.get_running_loop().run_in_executor(None, results.get)
        print(f"N={n} x {push} MiB: peers={peers} host RSS {before:.0f} -> {after:.0f} MiB (+{after - before:.0f}); "
              f"kernel receive queues {queued:.1f} MiB (limits {limits:.1f} MiB); connection pool {pool}")
        commands.put("stop")
        for task in tasks:
            task.cancel()

    asyncio.run(run())
    server.join(10)


if __name__ == "__main__":
    main()
