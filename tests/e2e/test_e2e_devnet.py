"""Real devnets: N `bcai node run` processes on 127.0.0.1 talking TCP.

The smoke test (unmarked, in `make test`) starts 4 validators through the CLI, posts a
transfer to node 0 and checks it is committed and visible on all four. The crash test
(e2e, slow) kills a validator with SIGKILL under load and restarts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bcai.crypto import PrivateKey, sha256
from bcai.crypto.keystore import KeyStore
from bcai.errors import BcaiError, DevnetStartFailed
from bcai.node import CommittedBlock, devnet
from bcai.node.processes import is_ours, start_node
from bcai.sdk import Client
from bcai.store import SqliteChainStore


def bcai(*args: str, timeout: float = 90) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bcai", *args, "--json"], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def get_json(url: str) -> Any:
    return httpx.get(url, timeout=20).json()


def height_of(url: str) -> int:
    """The node's height, or -1 while its API is not up (a restarting node)."""
    try:
        return int(get_json(f"{url}/status")["height"])
    except httpx.HTTPError:
        return -1


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def devnet_home(tmp_path: Path) -> Any:
    home = tmp_path / "devnet"
    yield home
    if (home / devnet.DEVNET_FILE).exists():
        devnet.down(home)


def collect_events(url: str, events: list[dict[str, Any]], connected: threading.Event) -> None:
    """Read the node's websocket `/events` (real uvicorn, a real client) until the server closes."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(url.replace("http://", "ws://") + "/events", open_timeout=20) as socket:
        connected.set()
        try:
            for message in socket:
                events.append(json.loads(message))
        except ConnectionClosed:
            pass


def test_devnet_commits_and_a_tx_is_visible_on_all_four(devnet_home: Path) -> None:
    up = bcai("devnet", "up", "-n", "4", "--home", str(devnet_home))
    urls = [node["api_url"] for node in up["nodes"]]
    events: list[dict[str, Any]] = []
    connected = threading.Event()
    threading.Thread(target=collect_events, args=(urls[3], events, connected), daemon=True).start()
    assert connected.wait(20), "the websocket /events handshake did not complete"
    client_key = KeyStore(devnet_home).load("client")
    recipient = PrivateKey.from_label("e2e-recipient").address
    with Client(urls[0], key=client_key) as client:
        tx_hash = client.transfer(recipient, 4321)
        receipt = client.wait_for_tx(tx_hash, timeout_s=30)
    assert receipt["status"] == "committed" and receipt["body"]["amount"] == 4321
    for url in urls:
        wait_until(lambda: get_json(f"{url}/status")["height"] >= receipt["height"], 30, f"{url} to commit")
        assert get_json(f"{url}/txs/{tx_hash}")["height"] == receipt["height"]
        assert get_json(f"{url}/accounts/{recipient}")["balance"] == 4321
    hashes = {get_json(f"{url}/blocks/{receipt['height']}")["hash"] for url in urls}
    assert len(hashes) == 1
    wait_until(lambda: any(e["type"] == "tx" and e["hash"] == tx_hash for e in list(events)), 30, "the tx event")
    tx_event = next(e for e in list(events) if e["type"] == "tx" and e["hash"] == tx_hash)
    assert tx_event["height"] == receipt["height"] and tx_event["kind"] == "transfer"
    assert {"block": receipt["height"]} in [{"block": e["height"]} for e in list(events) if e["type"] == "block"]
    # the CLI path: sign with the devnet's client key, submit to node 1, wait for the commit
    cli = bcai("tx", "transfer", str(recipient), "6", "--key", "client", "--home", str(devnet_home), "--url", urls[1])
    assert cli["status"] == "committed" and cli["sender"] == str(client_key.address)
    account = bcai("account", "--key", "client", "--home", str(devnet_home), "--url", urls[2])
    assert account["address"] == str(client_key.address) and account["nonce"] == 2
    status = bcai("devnet", "status", "--home", str(devnet_home))
    assert [n["name"] for n in status["nodes"]] == ["node0", "node1", "node2", "node3"]
    assert all(n["height"] >= receipt["height"] and n["peers"] == 3 and n["api_url"] for n in status["nodes"])
    pids = [(n.pid, n.command) for n in devnet.load_devnet(devnet_home)]
    assert bcai("devnet", "down", "--home", str(devnet_home))["stopped"] == ["node0", "node1", "node2", "node3"]
    assert not any(is_ours(pid, command) for pid, command in pids if pid and command)


def test_invalid_devnet_commands_fail_cleanly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bcai", "devnet", "status", "--home", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and json.loads(done.stdout)["error"]["code"] == "devnet_not_found"
    done = subprocess.run([sys.executable, "-m", "bcai", "devnet", "down", "--home", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and json.loads(done.stdout)["error"]["code"] == "devnet_not_found"
    done = subprocess.run([sys.executable, "-m", "bcai", "account", "--json"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and json.loads(done.stdout)["error"]["code"] == "config_invalid"
    done = subprocess.run([sys.executable, "-m", "bcai", "status", "--url", "http://127.0.0.1:9", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and json.loads(done.stdout)["error"]["code"] == "node_unreachable"


class Load(threading.Thread):
    """Signed transfers from the client key to node 0, back to back; records acknowledged hashes."""

    def __init__(self, url: str, key: PrivateKey) -> None:
        super().__init__(daemon=True)
        self.client = Client(url, key=key)
        self.acknowledged: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        to = PrivateKey.from_label("load-recipient").address
        while not self.stop.is_set():
            try:
                self.acknowledged.append(self.client.transfer(to, 1))
            except BcaiError:  # e.g. a timeout whose tx did land: the next send retries the same bytes
                time.sleep(0.05)
            time.sleep(0.01)


@pytest.mark.e2e
@pytest.mark.slow
def test_kill_9_a_validator_under_load(devnet_home: Path) -> None:
    nodes = devnet.up(devnet_home, 4)
    urls = [n.api_url for n in nodes]
    load = Load(urls[0], KeyStore(devnet_home).load("client"))
    load.start()
    time.sleep(3)
    victim = nodes[3]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    height_at_kill = get_json(f"{urls[0]}/status")["height"]
    wait_until(lambda: get_json(f"{urls[0]}/status")["height"] >= height_at_kill + 5, 60, "the chain to go on with 3 of 4")
    victim.pid, victim.command = start_node(Path(victim.home))
    devnet.save_devnet(devnet_home, nodes)
    time.sleep(3)
    load.stop.set()
    load.join(10)
    target = get_json(f"{urls[0]}/status")["height"]
    wait_until(lambda: height_of(urls[3]) >= target, 90, "the restarted node to catch up")
    assert load.acknowledged
    last = load.acknowledged[-1]  # one client, increasing nonces: once the last is in, all are
    wait_until(lambda: get_json(f"{urls[0]}/txs/{last}").get("status") == "committed", 60, "the last tx")
    target = get_json(f"{urls[0]}/status")["height"]
    wait_until(lambda: min(height_of(url) for url in urls) >= target, 60, "all nodes to commit")
    devnet.down(devnet_home)  # then read every node's chain store directly
    stores = [SqliteChainStore(Path(n.home) / "data" / "chain.db") for n in nodes]
    top = min(store.get_height() for store in stores)
    committed: list[str] = []
    for height in range(1, top + 1):
        records = [CommittedBlock.from_bytes(store.get_block(height).data) for store in stores]
        assert len({r.block.block_id for r in records}) == 1, f"nodes disagree at height {height}"
        assert records[0].block.evidence == (), "a validator double-signed"
        committed.extend(sha256(tx).hex() for tx in records[0].block.txs)
    acknowledged = set(load.acknowledged)
    load_txs = [h for h in committed if h in acknowledged]
    assert len(load_txs) == len(set(load_txs))  # none twice
    assert set(load_txs) == acknowledged  # every acknowledged tx is committed


def test_sigterm_to_the_demo_stops_its_devnet(tmp_path: Path) -> None:
    """A CI timeout or `kill` stops `bcai demo` and the validator processes it started."""
    home = tmp_path / "demo"
    demo = subprocess.Popen([sys.executable, "-m", "bcai", "demo", "--home", str(home), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def started() -> bool:
            try:
                return any(n.is_running() for n in devnet.load_devnet(home))
            except BcaiError:
                return False
        wait_until(started, 90, "the demo's devnet to start")
        pids = [(n.pid, n.command) for n in devnet.load_devnet(home)]
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) != 0
    finally:
        if demo.poll() is None:
            demo.kill()
    wait_until(lambda: not any(is_ours(pid, command) for pid, command in pids if pid and command), 30,
               "the devnet's processes to exit")
    assert all(n.pid is None for n in devnet.load_devnet(home))


def test_a_devnet_that_does_not_start_leaves_nothing_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "devnet"

    def no_commit(nodes: list[devnet.DevnetNode], height: int, timeout_s: float) -> None:
        raise DevnetStartFailed("not all nodes reached height 1 (forced)")
    started: list[tuple[int, list[str]]] = []
    real_start = devnet.start_node

    def start_node(node_home: Path) -> tuple[int, list[str]]:
        started.append(real_start(node_home))
        return started[-1]
    monkeypatch.setattr(devnet, "wait_for_height", no_commit)
    monkeypatch.setattr(devnet, "start_node", start_node)
    with pytest.raises(DevnetStartFailed):
        devnet.up(home, 2)
    assert len(started) == 2 and all(n.pid is None for n in devnet.load_devnet(home))
    wait_until(lambda: not any(is_ours(pid, command) for pid, command in started), 30, "the started nodes to exit")
