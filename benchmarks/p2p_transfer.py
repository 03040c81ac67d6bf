"""Large-object transfer over bcai p2p vs raw asyncio loopback TCP, between two processes.

Measured side by side in one run, same payload size, frames as large as the chunks:
  raw       asyncio streams, 4-byte length + chunk-sized frames written in 256 KiB pieces,
            read as they come, no crypto (the ceiling)
  channel   the same frames through bcai's SecureChannel.send (STS handshake,
            AES-256-GCM), sealed and written one after the other on one thread
  p2p       ContentExchange.fetch of a chunked object through two Hosts: request/response
            per chunk (a window in flight), encryption of the next frame on a worker thread
            while the current one is written, BLAKE3 check of every chunk on both ends
            (off the event loop), stored in the fetcher's content store; fetched twice per
            round over one connection: cold (fresh processes) and warm (the second fetch)

Besides MB/s it reports the CPU time both processes spent per MiB moved (user + system,
every thread, first byte to last): wall-clock rates on a shared VM swing from one minute
to the next, CPU per MiB much less, and it shows what each layer adds.

Every process first sets glibc's malloc thresholds as `bcai node run` does
(`bcai.p2p.tune_allocator`); `--glibc-defaults` leaves them alone, to see what that buys.

Usage: python benchmarks/p2p_transfer.py [--mb 100] [--chunk-mib 4] [--window 8] [--store memory|file] [--glibc-defaults]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import struct
import tempfile
import time

from bcai.crypto import Cid, PrivateKey
from bcai.p2p import (
    DEFAULT_CHUNK_SIZE,
    ContentExchange,
    Host,
    NodeId,
    TcpTransport,
    perform_handshake,
    store_object,
)
from bcai.p2p import tune_allocator as tune_node_allocator
from bcai.store import FileContentStore, MemoryContentStore

MIB = 1024 * 1024
# the raw ends' read and write sizes: asyncio's best here (a 4 MiB write is ~40% slower)
RAW_READ, RAW_WRITE = 1024 * 1024, 256 * 1024


def tune_allocator() -> None:
    """What `bcai node run` does first (glibc malloc thresholds), unless --glibc-defaults."""
    if not os.environ.get("BCAI_BENCH_GLIBC_DEFAULTS"):
        tune_node_allocator()


def cpu_seconds() -> float:
    """CPU time of this process so far: every thread, user + system."""
    return time.process_time()


def raw_server(size: int, frame: int, conn) -> None:
    tune_allocator()  # every process here is set up the way `bcai node run` sets up a node
    async def main() -> None:
        done = asyncio.Event()
        payload = os.urandom(frame)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            cpu = cpu_seconds()
            sent = 0
            while sent < size:
                n = min(frame, size - sent)
                writer.write(struct.pack(">I", n))
                for start in range(0, n, RAW_WRITE):
                    writer.write(payload[start : min(start + RAW_WRITE, n)])
                    await writer.drain()
                sent += n
            writer.close()
            await writer.wait_closed()  # everything flushed before the process exits
            conn.send(cpu_seconds() - cpu)
            done.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await done.wait()
        server.close()

    asyncio.run(main())


async def raw_client(port: int, size: int, frame: int) -> tuple[float, float]:
    """Read the stream as fast as it comes (the frame headers are not even parsed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4 * frame)
    start, cpu = time.perf_counter(), cpu_seconds()
    got, total = 0, size + 4 * -(-size // frame)
    while got < total:
        data = await reader.read(RAW_READ)
        if not data:
            raise ConnectionError("raw stream ended early")
        got += len(data)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    writer.close()
    return elapsed, cpu


def channel_server(size: int, frame: int, conn) -> None:
    """Encrypted frames only (handshake + AES-256-GCM), no requests, no hashing."""
    tune_allocator()  # every process here is set up the way `bcai node run` sets up a node

    async def main() -> None:
        done = asyncio.Event()
        payload = os.urandom(frame)
        key = PrivateKey.from_label("bench-channel-server")

        async def serve(stream) -> None:
            channel = await perform_handshake(stream, key, "bcai")
            cpu = cpu_seconds()
            sent = 0
            while sent < size:
                await channel.send(payload[: min(frame, size - sent)])
                sent += frame
            await channel.recv()  # the client's "done"
            conn.send(cpu_seconds() - cpu)
            done.set()

        transport = TcpTransport()
        address = await transport.listen("127.0.0.1:0", serve)
        conn.send((address, NodeId.of(key.public_key).raw))
        await done.wait()
        await transport.close()

    asyncio.run(main())


async def channel_client(address: str, node: bytes, size: int) -> tuple[float, float]:
    stream = await TcpTransport().dial(address)
    channel = await perform_handshake(stream, PrivateKey.from_label("bench-channel-client"), "bcai", NodeId(node))
    start, cpu = time.perf_counter(), cpu_seconds()
    got = 0
    while got < size:
        got += len(await channel.recv())
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    await channel.send(b"done")
    channel.close()
    return elapsed, cpu


def p2p_server(size: int, chunk_size: int, conn) -> None:
    tune_allocator()  # every process here is set up the way `bcai node run` sets up a node
    async def main() -> None:
        host = Host(PrivateKey.from_label("bench-provider"), TcpTransport())
        await host.start("127.0.0.1:0")
        store = MemoryContentStore()
        object_id = store_object(store, os.urandom(size), chunk_size)
        ContentExchange(host, store)
        conn.send((host.address, host.node_id.raw, object_id.to_bytes()))
        loop = asyncio.get_running_loop()
        cpu = 0.0
        while True:  # "start" ... "end": report the CPU spent serving one fetch; "stop": quit
            message = await loop.run_in_executor(None, conn.recv)
            if message == "start":
                cpu = cpu_seconds()
            elif message == "end":
                conn.send(cpu_seconds() - cpu)
            else:
                break
        await host.stop()

    asyncio.run(main())


async def p2p_client(address: str, node: bytes, object_id: bytes, window: int, store_kind: str, server
                     ) -> list[tuple[float, float, int]]:
    """Fetch the object twice over one connection, each time into an empty store: the first
    fetch starts from fresh processes (cold), the second finds threads and heap warmed up.
    Returns (seconds, CPU seconds of both processes, bytes) for each."""
    host = Host(PrivateKey.from_label("bench-fetcher"), TcpTransport())
    await host.start("127.0.0.1:0")
    await host.connect(address, NodeId(node))
    exchange = ContentExchange(host, MemoryContentStore(), window_per_peer=window)
    results = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            exchange.store = MemoryContentStore() if store_kind == "memory" else FileContentStore(tmp)
            server.send("start")
            start, cpu = time.perf_counter(), cpu_seconds()
            manifest = await exchange.fetch(Cid.from_bytes(object_id), [NodeId(node)])
            elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            server.send("end")
            results.append((elapsed, cpu + server.recv(), manifest.size))
    await host.stop()
    return results


def measure_primitives() -> dict[str, float]:
    """Best-of-20 ms per MiB of the per-byte work each end does, on one core."""
    import hashlib

    import blake3
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    data, nonce = os.urandom(MIB), bytes(12)
    aes, chacha = AESGCM(os.urandom(32)), ChaCha20Poly1305(os.urandom(32))
    out = bytearray(MIB + 16)
    work = {
        "memcpy": lambda: bytes(bytearray(data)),
        "sha256": lambda: hashlib.sha256(data).digest(),
        "blake3 (the chunks' hash)": lambda: blake3.blake3(data).digest(),
        "aes-256-gcm (the channel's cipher)": lambda: aes.encrypt_into(nonce, data, b"", out),
        "chacha20-poly1305 (protocol 1's)": lambda: chacha.encrypt_into(nonce, data, b"", out),
    }
    result = {}
    for name, fn in work.items():
        best = float("inf")
        for _ in range(20):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        result[name] = best * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100, help="object size in MiB")
    parser.add_argument("--chunk-mib", type=int, default=DEFAULT_CHUNK_SIZE // MIB)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--store", choices=["memory", "file"], default="memory")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--glibc-defaults", action="store_true", help="skip tune_allocator() in every process")
    args = parser.parse_args()
    size, frame = args.mb * MIB, args.chunk_mib * MIB
    if args.glibc_defaults:
        os.environ["BCAI_BENCH_GLIBC_DEFAULTS"] = "1"  # seen by the spawned servers
    tune_allocator()
    ctx = mp.get_context("spawn")
    rates: dict[str, list[float]] = {"raw": [], "channel": [], "p2p": [], "p2p warm": []}
    cpu: dict[str, list[float]] = {key: [] for key in rates}  # ms per MiB, both processes
    for _ in range(args.repeat):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=raw_server, args=(size, frame, child))
        proc.start()
        elapsed, used = asyncio.run(raw_client(parent.recv(), size, frame))
        used += parent.recv()
        proc.join()
        rates["raw"].append(size / elapsed / 1e6)
        cpu["raw"].append(used * 1000 / args.mb)

        parent, child = ctx.Pipe()
        proc = ctx.Process(target=channel_server, args=(size, frame, child))
        proc.start()
        elapsed, used = asyncio.run(channel_client(*parent.recv(), size))
        used += parent.recv()
        proc.join()
        rates["channel"].append(size / elapsed / 1e6)
        cpu["channel"].append(used * 1000 / args.mb)

        parent, child = ctx.Pipe()
        proc = ctx.Process(target=p2p_server, args=(size, frame, child))
        proc.start()
        address, node, object_id = parent.recv()
        fetches = asyncio.run(p2p_client(address, node, object_id, args.window, args.store, parent))
        parent.send("stop")
        proc.join()
        for key, (elapsed, used, got) in zip(("p2p", "p2p warm"), fetches):
            assert got == size
            rates[key].append(size / elapsed / 1e6)
            cpu[key].append(used * 1000 / args.mb)
    med = statistics.median
    print(f"object: {args.mb} MiB in {args.chunk_mib} MiB chunks (raw and channel: frames of that size), "
          f"fetcher store: {args.store}, window {args.window}, malloc: "
          f"{'glibc defaults' if args.glibc_defaults else 'tune_allocator'}; {args.repeat} rounds, each measuring "
          "all three back to back; medians")
    print("per-MiB cost on one core: " + ", ".join(f"{k} {v:.2f} ms" for k, v in measure_primitives().items()))
    names = {"raw": "raw asyncio TCP loopback", "channel": "encrypted frames only", "p2p": "bcai p2p content fetch",
             "p2p warm": "  the same, second fetch"}
    for key, name in names.items():
        rounds = ", ".join(f"{r:.0f}" for r in rates[key])
        print(f"{name:24s}: {med(rates[key]):7.1f} MB/s (rounds: {rounds}); CPU of both processes "
              f"{med(cpu[key]):.2f} ms per MiB")
    for key in ("channel", "p2p", "p2p warm"):
        ratios = [r / base for r, base in zip(rates[key], rates["raw"])]
        goal = "; goal >= 0.50" if key == "p2p" else ""
        print(f"ratio {key + ' / raw':17s}: {med(ratios):7.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)}{goal})")
    print(f"CPU per MiB, p2p / raw: {med(cpu['p2p']) / med(cpu['raw']):.1f}x")


if __name__ == "__main__":
    main()
