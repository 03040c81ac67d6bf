"""Finalized signed tx/s and finality latency of a 4-validator devnet on this machine.

    .venv/bin/python benchmarks/devnet_throughput.py [--seconds 20] [--senders 8] [--nodes 4]
        [--rate 0] [--api-rate 5000] [--batch 0]

Starts a fresh devnet (separate processes, TCP on 127.0.0.1) in a temporary home, funds
`--senders` accounts from the devnet's client key, then each sender thread POSTs transfers
to one node (round robin over the nodes) as fast as the node admits them (or, with
`--rate R`, paced to R tx/s in all: finality at a load the devnet sustains), for `--seconds`;
with `--batch N`, N txs per `POST /txs/batch` (each tx's latency counts from its batch's POST).
The transfers are signed before the timed window (a real client signs on its own machine;
here signing would take CPU from the nodes, which share the cores with the load
generator). Each node's API rate limit per client IP is raised to `--api-rate` (all
senders are 127.0.0.1; the default 200 req/s per node would cap 4 nodes at 800 tx/s).
A watcher polls node 0 and records the wall time at which each block became visible; a
tx's finality latency is that time minus the time its POST was sent.

Side by side, in the same run: the ledger's own single-process ceiling (decode + verify +
apply of the same transfers to a `State`, no network, no consensus), so the devnet figure
can be read as a fraction of what one node's execution alone allows; and where the CPU
went during the window (Linux /proc): CPU seconds of the node processes and of the load
generator per finalized tx, and the machine's busy share. With every core busy, the
node CPU per tx gives the devnet's ceiling on this machine: cores / (node CPU per tx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bcai.crypto import PrivateKey
from bcai.crypto.keystore import KeyStore
from bcai.ledger import Transfer, compute_genesis_state, encode_tx, process_tx
from bcai.node import devnet
from bcai.node.home import make_genesis


def measure_ledger_ceiling(count: int = 3000) -> float:
    """Transfers/s that `process_tx` alone sustains in this process (decode + verify + apply)."""
    key = PrivateKey.from_label("ceiling")
    validator = PrivateKey.from_label("ceiling-validator")
    state = compute_genesis_state(make_genesis("bench", [validator.public_key], [(key.address, 10**12)]))
    to = PrivateKey.from_label("ceiling-to").address
    txs = [encode_tx(key, n, 1, "bench", Transfer(to, 1)) for n in range(count)]
    start = time.perf_counter()
    for raw in txs:
        process_tx(state, raw)
    return count / (time.perf_counter() - start)


def get_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far (Linux /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def raise_api_rate(node_home: Path, rate: int) -> None:
    config = node_home / "config.toml"
    text = config.read_text()
    section = text.index("[api]")
    head, tail = text[:section], text[section:]
    config.write_text(head + tail.replace("rate_limit_per_s = 200", f"rate_limit_per_s = {rate}", 1))


class Sender:
    """One account's stream of transfers, POSTed one at a time over one keep-alive connection.

    The HTTP/1.1 requests are written and their responses parsed by hand on asyncio streams
    (as wrk or ab do): a general-purpose client costs ~2 ms of CPU per request here, which
    on a shared 2-core machine would be taken from the nodes being measured.
    """

    def __init__(self, key: PrivateKey, url: str, chain_id: str, count: int) -> None:
        self.url = url
        self.sent: dict[str, float] = {}  # tx hash -> time the POST was sent
        self.rejected = 0
        to = PrivateKey.from_label("bench-sink").address
        self.txs = [encode_tx(key, nonce, 1, chain_id, Transfer(to, 1)) for nonce in range(count)]

    async def run(self, until: float, interval: float, batch: int) -> None:
        """POST one tx at a time (`batch` 0: `POST /txs`) or `batch` txs per `POST /txs/batch`."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        path = "/txs/batch" if batch else "/txs"
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n".encode()
        hexed = [tx.hex().encode() for tx in self.txs]
        nonce = 0
        next_at = time.time()
        try:
            while time.time() < until and nonce < len(self.txs):
                count = max(1, batch)
                if interval > 0:  # paced: `count` txs every `count * interval` seconds, when the node keeps up
                    next_at += interval * count
                    await asyncio.sleep(max(0.0, next_at - time.time()))
                if batch:
                    body = b'{"txs":["%s"]}' % b'","'.join(hexed[nonce:nonce + batch])
                else:
                    body = b'{"tx":"%s"}' % hexed[nonce]
                sent_at = time.time()
                writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                status, reply = await read_response(reader)
                if status == 202 and not batch:
                    self.sent[json.loads(reply)["hash"]] = sent_at
                    nonce += 1
                    continue
                if status == 200 and batch:
                    results = json.loads(reply)["results"]
                    for result in results:  # admitted up to the first refusal; resend from there
                        if result["error"] is not None:
                            break
                        self.sent[result["hash"]] = sent_at
                        nonce += 1
                    else:
                        continue
                self.rejected += 1
                await asyncio.sleep(0.05)  # mempool full or rate limited: back off
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length (what uvicorn sends)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def run_senders(senders: list[Sender], until: float, rate: float, batch: int) -> None:
    interval = len(senders) / rate if rate > 0 else 0.0
    await asyncio.gather(*(sender.run(until, interval, batch) for sender in senders))


class Watcher(threading.Thread):
    """Records when each block became visible at node 0, and its tx hashes."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: dict[int, tuple[float, list[str]]] = {}
        self.rounds: dict[int, int] = {}  # height -> the round it was committed in
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            height = http.get("/status").json()["height"]
            while not self.stop.is_set():
                top = http.get("/status").json()["height"]
                now = time.time()
                for h in range(height + 1, top + 1):
                    block = http.get(f"/blocks/{h}").json()
                    self.seen[h] = (now, block["txs"])
                    self.rounds[h] = block["commit"]["round"]
                height = max(height, top)
                time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0,
                        help="offered load in tx/s over all senders (0: each sender as fast as it is answered)")
    parser.add_argument("--api-rate", type=int, default=5000, help="API requests/s per client IP, per node")
    parser.add_argument("--batch", type=int, default=0,
                        help="txs per POST /txs/batch (0: one POST /txs per tx, as before the batch route)")
    args = parser.parse_args()
    ceiling = measure_ledger_ceiling()
    home = Path(tempfile.mkdtemp(prefix="bcai-bench-")) / "devnet"
    nodes = devnet.create_devnet(home, args.nodes)
    for node in nodes:
        raise_api_rate(Path(node.home), args.api_rate)
    try:
        devnet.start_devnet(home, nodes)
        devnet.wait_for_height(nodes, 1, 60)
        urls = [n.api_url for n in nodes]
        client = KeyStore(home).load("client")
        chain_id = httpx.get(f"{urls[0]}/status").json()["chain_id"]
        senders = [PrivateKey.from_label(f"bench-sender-{i}") for i in range(args.senders)]
        with httpx.Client(base_url=urls[0], timeout=10) as http:  # fund the senders in one block or two
            hashes = [http.post("/txs", json={"tx": encode_tx(client, i, 1, chain_id,
                                                              Transfer(k.address, 10**9)).hex()}).json()["hash"]
                      for i, k in enumerate(senders)]
            for h in hashes:
                while http.get(f"/txs/{h}").json().get("status") != "committed":
                    time.sleep(0.05)
        per_sender = int(args.seconds * 2000 / args.senders) + 100  # room for twice the goal
        threads = [Sender(k, urls[i % len(urls)], chain_id, per_sender) for i, k in enumerate(senders)]
        watcher = Watcher(urls[0])
        watcher.start()
        time.sleep(0.5)
        pids = [n.pid for n in nodes if n.pid is not None]
        cpu0, own0, machine0 = sum(map(get_cpu_seconds, pids)), time.process_time(), get_machine_busy()
        start = time.time()
        until = start + args.seconds
        asyncio.run(run_senders(threads, until, args.rate, args.batch))
        node_cpu, own_cpu = sum(map(get_cpu_seconds, pids)) - cpu0, time.process_time() - own0
        machine1 = get_machine_busy()
        busy = (machine1[0] - machine0[0]) / max(1.0, machine1[1] - machine0[1])
        cores = os.cpu_count() or 1
        sent = {h: at for t in threads for h, at in t.sent.items()}
        deadline = time.time() + 60
        while time.time() < deadline:  # let the backlog drain
            committed = {h for _, (_, txs) in watcher.seen.items() for h in txs}
            if set(sent) <= committed:
                break
            time.sleep(0.2)
        drained_cpu = sum(map(get_cpu_seconds, pids)) - cpu0  # load and drain: every acknowledged tx
        watcher.stop.set()
        watcher.join()
        commit_time = {h: at for at, txs in watcher.seen.values() for h in txs}
        latencies = sorted(commit_time[h] - at for h, at in sent.items() if h in commit_time)
        in_window = [h for h in sent if h in commit_time and commit_time[h] <= until]
        heights = [h for h, (at, _) in watcher.seen.items() if start <= at <= until]
        tps = len(in_window) / args.seconds
        p50 = statistics.median(latencies) if latencies else float("nan")
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
        offered = f"{args.rate:g} tx/s offered" if args.rate > 0 else "unpaced"
        how = f"batches of {args.batch}" if args.batch else "one tx per request"
        print(f"devnet: {args.nodes} validators, {args.senders} senders ({offered}, {how}), {args.seconds:g} s of load")
        print(f"  acknowledged txs        {len(sent)}  (rejected/back-off {sum(t.rejected for t in threads)})")
        print(f"  committed of those      {len(latencies)}")
        print(f"  finalized tx/s          {tps:.0f}   (goal 1000)")
        print(f"  finality p50 / p95      {p50:.3f} s / {p95:.3f} s   (goal p50 < 1 s)")
        late = sum(1 for h in heights if watcher.rounds.get(h, 0) > 0)
        print(f"  blocks in window        {len(heights)}  ({len(heights) / args.seconds:.1f} blocks/s, "
              f"{late} committed after round 0, largest {max((len(watcher.seen[h][1]) for h in heights), default=0)} txs)")
        print(f"  ledger ceiling, 1 proc  {ceiling:.0f} tx/s (process_tx alone)   ratio {tps / ceiling:.2f}")
        finalized = max(1, len(in_window))
        print(f"  CPU in the window       nodes {node_cpu:.1f} s, load generator {own_cpu:.1f} s, "
              f"machine {100 * busy:.0f}% busy of {cores} cores")
        print(f"  CPU per finalized tx    nodes {1000 * node_cpu / finalized:.2f} ms (all {args.nodes}), "
              f"load generator {1000 * own_cpu / finalized:.2f} ms")
        print(f"  node CPU per committed tx, load + drain  {1000 * drained_cpu / max(1, len(latencies)):.2f} ms "
              f"(all {args.nodes})")
        print(f"  CPU-bound ceiling here  {cores * finalized / max(1e-9, node_cpu + own_cpu):.0f} tx/s with this load "
              f"generator, {cores * finalized / max(1e-9, node_cpu):.0f} tx/s for the nodes alone")
    finally:
        devnet.down(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
