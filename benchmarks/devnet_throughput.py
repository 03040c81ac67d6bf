"""Finalized signed tx/s and finality latency of a 4-validator devnet on this machine.

    .venv/bin/python benchmarks/devnet_throughput.py [--seconds 20] [--senders 8] [--nodes 4]

Starts a fresh devnet (separate processes, TCP on 127.0.0.1) in a temporary home, funds
`--senders` accounts from the devnet's client key, then each sender thread signs transfers
locally and POSTs them to one node (round robin over the nodes) as fast as the node admits
them, for `--seconds`. A watcher polls node 0 and records the wall time at which each block
became visible; a tx's finality latency is that time minus the time its POST was sent.

Side by side, in the same run: the ledger's own single-process ceiling (decode + verify +
apply of the same transfers to a `State`, no network, no consensus), so the devnet figure
can be read as a fraction of what one node's execution alone allows.
"""

from __future__ import annotations

import argparse
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


class Sender(threading.Thread):
    def __init__(self, key: PrivateKey, url: str, chain_id: str, until: float) -> None:
        super().__init__(daemon=True)
        self.key, self.url, self.chain_id, self.until = key, url, chain_id, until
        self.sent: dict[str, float] = {}  # tx hash -> time the POST was sent
        self.rejected = 0

    def run(self) -> None:
        to = PrivateKey.from_label("bench-sink").address
        nonce = 0
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while time.time() < self.until:
                raw = encode_tx(self.key, nonce, 1, self.chain_id, Transfer(to, 1))
                sent_at = time.time()
                response = http.post("/txs", json={"tx": raw.hex()})
                if response.status_code == 202:
                    self.sent[response.json()["hash"]] = sent_at
                    nonce += 1
                else:
                    self.rejected += 1
                    time.sleep(0.05)  # mempool full or rate limited: back off


class Watcher(threading.Thread):
    """Records when each block became visible at node 0, and its tx hashes."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: dict[int, tuple[float, list[str]]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            height = http.get("/status").json()["height"]
            while not self.stop.is_set():
                top = http.get("/status").json()["height"]
                now = time.time()
                for h in range(height + 1, top + 1):
                    self.seen[h] = (now, http.get(f"/blocks/{h}").json()["txs"])
                height = max(height, top)
                time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=4)
    args = parser.parse_args()
    ceiling = measure_ledger_ceiling()
    home = Path(tempfile.mkdtemp(prefix="bcai-bench-")) / "devnet"
    nodes = devnet.up(home, args.nodes, fresh=True)
    try:
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
        watcher = Watcher(urls[0])
        watcher.start()
        time.sleep(0.5)
        start = time.time()
        until = start + args.seconds
        threads = [Sender(k, urls[i % len(urls)], chain_id, until) for i, k in enumerate(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent = {h: at for t in threads for h, at in t.sent.items()}
        deadline = time.time() + 60
        while time.time() < deadline:  # let the backlog drain
            committed = {h for _, (_, txs) in watcher.seen.items() for h in txs}
            if set(sent) <= committed:
                break
            time.sleep(0.2)
        watcher.stop.set()
        watcher.join()
        commit_time = {h: at for at, txs in watcher.seen.values() for h in txs}
        latencies = sorted(commit_time[h] - at for h, at in sent.items() if h in commit_time)
        in_window = [h for h in sent if h in commit_time and commit_time[h] <= until]
        heights = [h for h, (at, _) in watcher.seen.items() if start <= at <= until]
        tps = len(in_window) / args.seconds
        p50 = statistics.median(latencies) if latencies else float("nan")
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
        print(f"devnet: {args.nodes} validators, {args.senders} senders, {args.seconds:g} s of load")
        print(f"  acknowledged txs        {len(sent)}  (rejected/back-off {sum(t.rejected for t in threads)})")
        print(f"  committed of those      {len(latencies)}")
        print(f"  finalized tx/s          {tps:.0f}   (goal 1000)")
        print(f"  finality p50 / p95      {p50:.3f} s / {p95:.3f} s   (goal p50 < 1 s)")
        print(f"  blocks in window        {len(heights)}  ({len(heights) / args.seconds:.1f} blocks/s)")
        print(f"  ledger ceiling, 1 proc  {ceiling:.0f} tx/s (process_tx alone)   ratio {tps / ceiling:.2f}")
    finally:
        devnet.down(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
