"""config.toml: a saved config loads back equal; anything malformed is a clear ConfigError."""

from pathlib import Path

import pytest

from bcai.errors import ConfigError
from bcai.node.config import NodeConfig, P2PConfig, StoreConfig, load_config, save_config
from bcai.p2p import TcpTransport


def test_saved_config_loads_back_equal(tmp_path: Path) -> None:
    config = NodeConfig(name="n1", chain_id="bcai-test", roles=("validator", "worker"),
                        store=StoreConfig(check_on_start=False))
    save_config(config, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == config


def test_p2p_resource_limits_reach_the_host(tmp_path: Path) -> None:
    """The [p2p] byte rate, outbound cap, socket buffers and connection pool are what the
    node's p2p host runs with (docs/p2p.md, "Resource limits")."""
    from bcai.node.home import init_home
    from bcai.node.node import Node

    p2p = P2PConfig(port=0, recv_bytes_per_s=1 << 20, recv_bytes_burst=3 << 20, max_outbound=7,
                    socket_buffer_bytes=256 << 10, conn_bytes=256 << 20)
    init_home(tmp_path / "n", "n", chain_id="bcai-limits", p2p=p2p)
    node = Node(tmp_path / "n")
    try:
        config, transport = node.host.config, node.host.transport
        assert (config.recv_bytes_per_s, config.recv_bytes_burst, config.max_outbound, config.conn_bytes) == (
            1 << 20, 3 << 20, 7, 256 << 20)
        assert isinstance(transport, TcpTransport) and transport.socket_buffer == 256 << 10
    finally:
        node.close()


def test_missing_sections_take_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[node]\nname = "n"\nchain_id = "c"\n')
    config = load_config(tmp_path / "config.toml")
    assert config.store.check_on_start is True and config.roles == ("validator",)


@pytest.mark.parametrize("text, words", [
    ('[node]\nname = "n"\nchain_id = "c"\n[store]\ncheck_on_start = 1\n', "store.check_on_start must be bool"),
    ('[node]\nname = "n"\nchain_id = "c"\n[store]\nfast = true\n', "unknown keys in [store]"),
    ('[node]\nname = "n"\nchain_id = "c"\n[disk]\n', "unknown sections"),
    ('[node]\nname = "n"\nchain_id = "c"\n[p2p]\nport = 70000\n', "out of range"),
    ('[node]\nname = "n"\nchain_id = "c"\n[p2p]\nbootstrap = "a@b:1"\n', "list of strings"),
    ('[node]\nname = "n"\nchain_id = "c"\n[p2p]\nmax_outbound = 0\n', "p2p.max_outbound must be at least 1"),
    ('[node]\nname = "n"\nchain_id = "c"\n[p2p]\nsocket_buffer_bytes = 100\n', "at least 4096"),
    ('[node]\nname = "n"\nchain_id = "c"\n[p2p]\nconn_bytes = 104857600\n', "must hold max_outbound + 1 connections"),
    ('[node]\nname = "n"\nchain_id = "c"\n[p2p]\nrecv_bytes_per_s = 100000\n', "p2p.recv_bytes_per_s must be more than"),
    ('[node]\nname = "n"\nchain_id = "c"\nroles = ["miner"]\n', "roles must be"),
    ('[node]\nname = "n"\nchain_id = "c"\nroles = "validator"\n', "list of strings"),
    ('[node]\nname = 5\nchain_id = "c"\n', "node.name must be a string"),
    ('[node]\nchain_id = "c"\n', "bad [node] section"),
    ('[node]\nname = "n"\nchain_id = "c"\nshoe = 1\n', "bad [node] section"),
    ('node = 3\n', "[node] must be a table"),
    ('store = 3\n[node]\nname = "n"\nchain_id = "c"\n', "[store] must be a table"),
    ('[node\nname = "n"', "not valid TOML"),
    ('[node]\nname = "n"\nchain_id = "c"\nlog_level = "loud"\n', "log_level must be one of"),
    ('[node]\nname = "n"\nchain_id = "c"\nlog_max_bytes = "1G"\n', "node.log_max_bytes must be an integer"),
    ('[node]\nname = "n"\nchain_id = "c"\nlog_backups = 0\n', "log_backups at least 1"),
])
def test_malformed_config_is_refused(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.toml")
    assert words in str(info.value) and info.value.code == "config_invalid"


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bcai node init"):
        load_config(tmp_path / "config.toml")


def test_node_log_is_rotated(tmp_path: Path) -> None:
    import logging

    from bcai.node.telemetry import setup_logging

    handler = setup_logging(tmp_path, "info", max_bytes=4096, backups=2)
    try:
        for i in range(500):
            logging.getLogger("bcai.test").info("a line that peers could make us write", extra={"i": i})
    finally:
        logging.getLogger("bcai").removeHandler(handler)
        handler.close()
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == ["node.log", "node.log.1", "node.log.2"]
    assert all((tmp_path / "logs" / name).stat().st_size <= 4096 for name in logs)
