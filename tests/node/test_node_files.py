"""The node's files on disk (devnet.json, consensus.json, key files): a corrupt one is a clear error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bcai.crypto.keystore import KeyStore
from bcai.errors import ConfigError, DevnetCorrupt, DevnetNotFound, InvalidKey
from bcai.node import devnet
from bcai.node.chainspec import CONSENSUS_FILE, load_chain_spec
from bcai.node.config import P2PConfig, load_config
from bcai.node.home import init_home

GOOD_ENTRY = {"name": "node0", "home": "/x/node0", "api_url": "http://127.0.0.1:1", "p2p_address": "127.0.0.1:2",
              "pid": None, "command": None}
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def write_devnet(home: Path, content: str | bytes) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / devnet.DEVNET_FILE
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def test_a_saved_devnet_loads_back(tmp_path: Path) -> None:
    devnet.save_devnet(tmp_path, [devnet.DevnetNode(**{**GOOD_ENTRY, "pid": 7, "command": ["bcai", "node"]})])
    assert devnet.load_devnet(tmp_path)[0].pid == 7
    with pytest.raises(DevnetNotFound):
        devnet.load_devnet(tmp_path / "elsewhere")


@pytest.mark.parametrize("content", [
    "garbage", b"\xff\xfe", DEEP_JSON, "[]", '{"nodes": 5}', '{"nodes": [5]}', '{"nodes": [{}]}',
    json.dumps({"nodes": [{**GOOD_ENTRY, "pid": "1"}]}), json.dumps({"nodes": [{**GOOD_ENTRY, "pid": -1}]}),
    json.dumps({"nodes": [{**GOOD_ENTRY, "pid": True}]}), json.dumps({"nodes": [{**GOOD_ENTRY, "command": "rm -rf /"}]}),
    json.dumps({"nodes": [{**GOOD_ENTRY, "name": 3}]}), json.dumps({"nodes": [{**GOOD_ENTRY, "extra": 1}]}),
])
def test_a_corrupt_devnet_file_is_devnet_corrupt(tmp_path: Path, content: str | bytes) -> None:
    write_devnet(tmp_path, content)
    with pytest.raises(DevnetCorrupt):
        devnet.load_devnet(tmp_path)
    with pytest.raises(DevnetCorrupt):  # `devnet up` without --fresh keeps the file and says so
        devnet.up(tmp_path, 4)
    assert (tmp_path / devnet.DEVNET_FILE).read_bytes() == (content if isinstance(content, bytes) else content.encode())


@pytest.fixture
def node_home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    init_home(home, "files-test", ("validator",), "bcai-filestest", p2p=P2PConfig(port=0))
    return home


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe", "not valid JSON"), (DEEP_JSON.encode(), "nested too deeply"), (b"{not json", "not valid JSON"),
    (b"[]", "expected exactly the fields"),
])
def test_a_corrupt_consensus_file_is_config_invalid(node_home: Path, content: bytes, words: str) -> None:
    load_chain_spec(node_home)
    (node_home / CONSENSUS_FILE).write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        load_chain_spec(node_home)


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe", "not valid TOML"), (b"a = " + b"[" * 100_000, "nested too deeply"),
])
def test_a_corrupt_config_file_is_config_invalid(node_home: Path, content: bytes, words: str) -> None:
    (node_home / "config.toml").write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        load_config(node_home / "config.toml")


@pytest.mark.parametrize("content", [b"\xff\xfe", DEEP_JSON.encode(), b"[1]", b'{"seed": 5}', b'"x"'])
def test_a_corrupt_key_file_is_invalid_key(tmp_path: Path, content: bytes) -> None:
    keys = KeyStore(tmp_path)
    keys.create("k")
    path = next((tmp_path / "keys").glob("k.json"))
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(InvalidKey, match="corrupt"):
        keys.load("k")


def test_one_node_process_per_home(node_home: Path) -> None:
    """A second node on the same home would sign with the same key: it is refused."""
    from bcai.errors import NodeHomeLocked
    from bcai.node.node import Node

    first = Node(node_home)
    with pytest.raises(NodeHomeLocked, match=f"pid {os.getpid()}"):
        Node(node_home)
    first.close()
    Node(node_home).close()


def test_the_home_lock_dies_with_its_process(node_home: Path) -> None:
    import signal
    import subprocess
    import sys

    from bcai.errors import NodeHomeLocked
    from bcai.node.lock import HomeLock

    (node_home / "data").mkdir(exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bcai.node.lock import HomeLock; "
                               f"lock = HomeLock({str(node_home / 'data')!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(NodeHomeLocked, match=f"pid {holder.pid}"):
            HomeLock(node_home / "data")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    HomeLock(node_home / "data").release()  # no stale lock after kill -9


@pytest.mark.parametrize("taken", ["p2p", "api"])
def test_a_taken_port_is_node_start_failed_and_leaves_nothing_open(node_home: Path, taken: str) -> None:
    import asyncio
    import dataclasses
    import socket

    from bcai.errors import NodeStartFailed
    from bcai.node.config import ApiConfig, save_config
    from bcai.node.node import Node

    with socket.create_server(("127.0.0.1", 0)) as blocker:
        port = blocker.getsockname()[1]
        config = load_config(node_home / "config.toml")
        config = dataclasses.replace(config, p2p=P2PConfig(port=port if taken == "p2p" else 0),
                                     api=ApiConfig(port=port if taken == "api" else 0))
        save_config(config, node_home / "config.toml")
        node = Node(node_home)
        with pytest.raises(NodeStartFailed, match=f"(?i){taken}.*127.0.0.1:{port}.*{taken}.port in config.toml"):
            asyncio.run(node.run())
        node.close()
        node.close()  # twice is harmless (the CLI closes after a failed start)
    Node(node_home).close()  # the home was released
