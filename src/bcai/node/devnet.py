"""A local devnet: N node processes on 127.0.0.1 sharing one generated genesis.

    DEVNET_HOME/
      devnet.json        what `up` started: per node name, home, pid, exact command, urls
      keys/client.json   a funded key for the user (`bcai tx ... --key client`)
      node0/ ... nodeN-1/  each a full node home (see `bcai.node.home`)

`down` stops exactly the processes recorded in devnet.json whose live command line is still
the recorded one (see `bcai.node.processes`), never anything found by name.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bcai.crypto.keystore import KeyStore
from bcai.encoding.documents import load_json, read_utf8
from bcai.errors import DevnetAlreadyRunning, DevnetCorrupt, DevnetNotFound, DevnetStartFailed, KeyStoreError
from bcai.home import default_home
from bcai.node.chainspec import ChainSpec
from bcai.node.config import ApiConfig, P2PConfig
from bcai.node.home import DEFAULT_CHAIN_ID, NODE_BALANCE, compute_local_params, init_home, make_genesis
from bcai.node.processes import find_free_ports, is_ours, start_node, stop_process
from bcai.p2p import NodeId

DEVNET_FILE = "devnet.json"
CLIENT_BALANCE = 10**15


def default_devnet_home() -> Path:
    return default_home() / "devnet"


@dataclass
class DevnetNode:
    name: str
    home: str
    api_url: str
    p2p_address: str
    pid: int | None = None
    command: list[str] | None = None

    def is_running(self) -> bool:
        return self.pid is not None and self.command is not None and is_ours(self.pid, self.command)


def load_devnet(home: Path) -> list[DevnetNode]:
    path = Path(home) / DEVNET_FILE
    try:
        raw = load_json(read_utf8(path))
    except FileNotFoundError:
        raise DevnetNotFound(f"no devnet at {home} (run `bcai devnet up`)") from None
    except (OSError, ValueError) as exc:
        raise DevnetCorrupt(f"cannot read {path}: {exc} (stop stray nodes by hand, then `bcai devnet up --fresh`)") from None
    return _parse_devnet(raw, path)


_DEVNET_FIELDS = {"name": str, "home": str, "api_url": str, "p2p_address": str}


def _parse_devnet(raw: Any, path: Path) -> list[DevnetNode]:
    """The nodes of a devnet.json, every field type-checked (a pid and command decide what `down` kills)."""
    entries = raw.get("nodes") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise DevnetCorrupt(f"{path}: expected an object with a list of nodes")
    nodes = []
    for entry in entries:
        ok = (isinstance(entry, dict) and set(_DEVNET_FIELDS) <= set(entry) <= set(_DEVNET_FIELDS) | {"pid", "command"}
              and all(isinstance(entry[k], kind) for k, kind in _DEVNET_FIELDS.items())
              and (entry.get("pid") is None or (type(entry["pid"]) is int and entry["pid"] > 0))
              and (entry.get("command") is None or (isinstance(entry["command"], list)
                                                    and all(isinstance(c, str) for c in entry["command"]))))
        if not ok:
            raise DevnetCorrupt(f"{path}: a node entry is malformed: {str(entry)[:200]}")
        nodes.append(DevnetNode(**entry))
    return nodes


def save_devnet(home: Path, nodes: list[DevnetNode]) -> None:
    path = Path(home) / DEVNET_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"nodes": [vars(n) for n in nodes]}, indent=2) + "\n")
    tmp.replace(path)


def create_devnet(home: Path, n: int, chain_id: str = DEFAULT_CHAIN_ID) -> list[DevnetNode]:
    """Generate keys, genesis and configs for `n` validators (nothing is started)."""
    if n < 1:
        raise ValueError("a devnet needs at least one node")
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    for old in home.glob("node*"):
        if (old / "config.toml").exists():
            shutil.rmtree(old)
    keys = KeyStore(home)
    try:
        client = keys.load("client")
    except KeyStoreError:
        client = keys.create("client")
    from bcai.crypto import PrivateKey

    node_keys = [PrivateKey.generate() for _ in range(n)]
    genesis = make_genesis(chain_id, [k.public_key for k in node_keys],
                           [(client.address, CLIENT_BALANCE)] + [(k.address, NODE_BALANCE) for k in node_keys])
    spec = ChainSpec(genesis, compute_local_params(chain_id), int(time.time() * 1000))
    ports = find_free_ports(2 * n)
    p2p_addresses = [f"127.0.0.1:{ports[2 * i]}" for i in range(n)]
    nodes = []
    for i, key in enumerate(node_keys):
        bootstrap = tuple(f"{NodeId.of(k.public_key)}@{p2p_addresses[j]}" for j, k in enumerate(node_keys) if j != i)
        node_home = home / f"node{i}"
        init_home(node_home, f"node{i}", ("validator",), chain_id, spec,
                  P2PConfig(port=ports[2 * i], bootstrap=bootstrap), ApiConfig(port=ports[2 * i + 1]), key)
        nodes.append(DevnetNode(f"node{i}", str(node_home), f"http://127.0.0.1:{ports[2 * i + 1]}", p2p_addresses[i]))
    save_devnet(home, nodes)
    return nodes


def start_devnet(home: Path, nodes: list[DevnetNode]) -> None:
    for node in nodes:
        if not node.is_running():
            node.pid, node.command = start_node(Path(node.home))
    save_devnet(home, nodes)


def up(home: Path, n: int, fresh: bool = False, wait_s: float = 60.0) -> list[DevnetNode]:
    """Create (or, when one exists and `fresh` is off, restart) a devnet and wait for a commit."""
    home = Path(home)
    try:
        nodes = load_devnet(home)
    except DevnetNotFound:
        nodes = []
    except DevnetCorrupt:
        if not fresh:
            raise
        nodes = []
    if any(node.is_running() for node in nodes):
        raise DevnetAlreadyRunning(f"a devnet is already running at {home} (`bcai devnet down` first)")
    if fresh or len(nodes) != n:
        nodes = create_devnet(home, n)
    start_devnet(home, nodes)
    try:
        wait_for_height(nodes, 1, wait_s)
    except BaseException:  # a failed or interrupted `up` leaves nothing running (the logs stay)
        down(home)
        raise
    return nodes


def wait_for_height(nodes: list[DevnetNode], height: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = [get_node_status(node) for node in nodes]
        if all(s.get("height", 0) >= height for s in statuses):
            return
        dead = [node.name for node in nodes if not node.is_running()]
        if dead or time.monotonic() > deadline:
            why = f"nodes exited: {dead}" if dead else f"not all nodes reached height {height} in {timeout_s:g} s"
            raise DevnetStartFailed(f"{why} (see each node's logs/stdout.log and logs/node.log)")
        time.sleep(0.25)


def get_node_status(node: DevnetNode, timeout_s: float = 2.0) -> dict[str, Any]:
    """The node's `/status` plus name and running flag (height 0 and `error` when unreachable)."""
    view: dict[str, Any] = {"name": node.name, "api_url": node.api_url, "home": node.home, "pid": node.pid,
                            "running": node.is_running()}
    try:
        status = httpx.get(f"{node.api_url}/status", timeout=timeout_s).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {**view, "height": 0, "peers": 0, "last_commit_time_ms": None, "error": str(exc) or type(exc).__name__}
    return {**view, "height": status["height"], "peers": status["peers"],
            "last_commit_time_ms": status["last_commit_time_ms"], "latest_block_hash": status["latest_block_hash"],
            "node_id": status["node_id"], "validator": status["validator"]}


def down(home: Path) -> list[str]:
    """Stop the devnet's processes; return the names of those that were running."""
    nodes = load_devnet(home)
    stopped = []
    for node in nodes:
        if node.pid is not None and node.command is not None and stop_process(node.pid, node.command):
            stopped.append(node.name)
        node.pid, node.command = None, None
    save_devnet(home, nodes)
    return stopped
