"""Large-object transfer over bcai p2p vs raw asyncio loopback TCP, between two processes.

Measured side by side in one run, same payload size, same 1 MiB framing:
  raw       asyncio streams, 4-byte length + 1 MiB frames, no crypto (the ceiling)
  channel   the same frames through bcai's SecureChannel.send (STS handshake,
            ChaCha20-Poly1305), sealed and written one after the other on one thread
  p2p       ContentExchange.fetch of a chunked object through two Hosts: request/response
            per chunk (a window in flight), encryption of the next frame on a worker thread
            while the current one is written, SHA-256 check of every chunk on both ends
            (off the event loop), stored in the fetcher's content store

Usage: python benchmarks/p2p_transfer.py [--mb 100] [--window 8] [--store memory|file]
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

from bcai.crypto import PrivateKey
from bcai.p2p import ContentExchange, Host, NodeId, TcpTransport, perform_handshake, store_object
from bcai.store import FileContentStore, MemoryContentStore

FRAME = 1024 * 1024


def raw_server(size: int, conn) -> None:
    async def main() -> None:
        done = asyncio.Event()
        payload = os.urandom(FRAME)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sent = 0
            while sent < size:
                n = min(FRAME, size - sent)
                writer.write(struct.pack(">I", n))
                writer.write(payload[:n])
                await writer.drain()
                sent += n
            writer.close()
            await writer.wait_closed()  # everything flushed before the process exits
            done.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await done.wait()
        server.close()

    asyncio.run(main())


async def raw_client(port: int, size: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4 * FRAME)
    start = time.perf_counter()
    got = 0
    while got < size:
        (n,) = struct.unpack(">I", await reader.readexactly(4))
        got += len(await reader.readexactly(n))
    elapsed = time.perf_counter() - start
    writer.close()
    return elapsed


def channel_server(size: int, conn) -> None:
    """Encrypted frames only (handshake + ChaCha20-Poly1305), no requests, no hashing."""

    async def main() -> None:
        done = asyncio.Event()
        payload = os.urandom(FRAME)
        key = PrivateKey.from_label("bench-channel-server")

        async def serve(stream) -> None:
            channel = await perform_handshake(stream, key, "bcai")
            sent = 0
            while sent < size:
                await channel.send(payload[: min(FRAME, size - sent)])
                sent += FRAME
            await channel.recv()  # the client's "done"
            done.set()

        transport = TcpTransport()
        address = await transport.listen("127.0.0.1:0", serve)
        conn.send((address, NodeId.of(key.public_key).raw))
        await done.wait()
        await transport.close()

    asyncio.run(main())


async def channel_client(address: str, node: bytes, size: int) -> float:
    stream = await TcpTransport().dial(address)
    channel = await perform_handshake(stream, PrivateKey.from_label("bench-channel-client"), "bcai", NodeId(node))
    start = time.perf_counter()
    got = 0
    while got < size:
        got += len(await channel.recv())
    elapsed = time.perf_counter() - start
    await channel.send(b"done")
    channel.close()
    return elapsed


def p2p_server(size: int, conn, chunk_size: int = FRAME) -> None:
    async def main() -> None:
        host = Host(PrivateKey.from_label("bench-provider"), TcpTransport())
        await host.start("127.0.0.1:0")
        store = MemoryContentStore()
        object_id = store_object(store, os.urandom(size), chunk_size)
        ContentExchange(host, store)
        conn.send((host.address, host.node_id.raw, object_id.to_bytes()))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        await host.stop()

    asyncio.run(main())


async def p2p_client(address: str, node: bytes, object_id: bytes, window: int, store_kind: str) -> tuple[float, int]:
    from bcai.crypto import Cid
    from bcai.p2p import NodeId

    host = Host(PrivateKey.from_label("bench-fetcher"), TcpTransport())
    await host.start("127.0.0.1:0")
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryContentStore() if store_kind == "memory" else FileContentStore(tmp)
        exchange = ContentExchange(host, store, window_per_peer=window)
        await host.connect(address, NodeId(node))
        start = time.perf_counter()
        manifest = await exchange.fetch(Cid.from_bytes(object_id), [NodeId(node)])
        elapsed = time.perf_counter() - start
    await host.stop()
    return elapsed, manifest.size


def measure_primitives() -> dict[str, float]:
    """Best-of-20 ms per MiB of the per-byte work each end does, on one core."""
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    data, cipher, nonce = os.urandom(FRAME), ChaCha20Poly1305(os.urandom(32)), bytes(12)
    out = bytearray(FRAME + 16)
    work = {
        "memcpy": lambda: bytes(bytearray(data)),
        "sha256": lambda: hashlib.sha256(data).digest(),
        "chacha20-poly1305": lambda: cipher.encrypt_into(nonce, data, b"", out),  # the channel's cipher
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
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--store", choices=["memory", "file"], default="memory")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk-mb", type=int, default=1)
    args = parser.parse_args()
    size = args.mb * 1024 * 1024
    ctx = mp.get_context("spawn")
    raw_rates, channel_rates, p2p_rates = [], [], []
    for _ in range(args.repeat):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=raw_server, args=(size, child))
        proc.start()
        elapsed = asyncio.run(raw_client(parent.recv(), size))
        proc.join()
        raw_rates.append(size / elapsed / 1e6)

        parent, child = ctx.Pipe()
        proc = ctx.Process(target=channel_server, args=(size, child))
        proc.start()
        elapsed = asyncio.run(channel_client(*parent.recv(), size))
        proc.join()
        channel_rates.append(size / elapsed / 1e6)

        parent, child = ctx.Pipe()
        proc = ctx.Process(target=p2p_server, args=(size, child, args.chunk_mb * 1024 * 1024))
        proc.start()
        address, node, object_id = parent.recv()
        elapsed, got = asyncio.run(p2p_client(address, node, object_id, args.window, args.store))
        assert got == size
        parent.send("stop")
        proc.join()
        p2p_rates.append(size / elapsed / 1e6)
    med = statistics.median
    ratios_channel = [c / r for c, r in zip(channel_rates, raw_rates)]
    ratios_p2p = [p / r for p, r in zip(p2p_rates, raw_rates)]
    runs = lambda rates: ", ".join(f"{r:.0f}" for r in rates)  # noqa: E731
    print(f"object: {args.mb} MiB in 1 MiB chunks, fetcher store: {args.store}, window {args.window}; "
          f"{args.repeat} rounds, each round measures all three back to back; medians")
    print("per-MiB cost on one core: " + ", ".join(f"{k} {v:.2f} ms" for k, v in measure_primitives().items()))
    print(f"raw asyncio TCP loopback : {med(raw_rates):8.1f} MB/s  (rounds: {runs(raw_rates)})")
    print(f"encrypted frames only    : {med(channel_rates):8.1f} MB/s  (rounds: {runs(channel_rates)})")
    print(f"bcai p2p content fetch   : {med(p2p_rates):8.1f} MB/s  (rounds: {runs(p2p_rates)})")
    print(f"ratio encrypted / raw    : {med(ratios_channel):8.2f}  (per round: {', '.join(f'{r:.2f}' for r in ratios_channel)})")
    print(f"ratio p2p / raw          : {med(ratios_p2p):8.2f}  (per round: {', '.join(f'{r:.2f}' for r in ratios_p2p)}; goal >= 0.50)")

if __name__ == "__main__":
    main()
