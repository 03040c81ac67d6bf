"""A node's `config.toml`: who it is, which roles it plays, where it listens.

    HOME/
      config.toml        this file
      genesis.json       the chain's genesis (see docs/genesis.md)
      keys/node.json     the node's ed25519 identity (mode 0600)
      data/              SQLite chain store and content store
      logs/node.log      structured logs, one JSON object per line
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from bcai.encoding.documents import load_toml, read_utf8
from bcai.errors import ConfigError
from bcai.p2p.host import HostConfig
from bcai.p2p.tcp import compute_connection_bytes

_HOST = HostConfig()  # the p2p host's frame limit and send_timeout, which the node keeps

ROLES = ("validator", "worker", "evaluator", "client")
NODE_TYPES = ("cpu", "gpu", "any")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class P2PConfig:
    host: str = "127.0.0.1"
    port: int = 26656
    bootstrap: tuple[str, ...] = ()  # "PUBKEYHEX@host:port"
    max_peers: int = 50
    rate_limit_per_s: int = 100
    # docs/p2p.md, "Resource limits": unsolicited bytes per second per peer (answers to our
    # own requests are free; over it we stop reading that peer, nothing is dropped)
    recv_bytes_per_s: int = 32 << 20
    recv_bytes_burst: int = 64 << 20
    max_outbound: int = 32  # connections we dial (idle ones a lookup opened are closed first)
    socket_buffer_bytes: int = 1 << 20  # SO_RCVBUF and SO_SNDBUF of every p2p socket
    conn_bytes: int = 1 << 30  # all connections' buffers together (each charged its worst case)

    def __post_init__(self) -> None:
        for name in ("rate_limit_per_s", "recv_bytes_per_s", "recv_bytes_burst", "max_outbound", "conn_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"p2p.{name} must be at least 1, got {getattr(self, name)}")
        if self.recv_bytes_per_s * _HOST.send_timeout <= _HOST.max_frame:
            # a peer over the rate waits up to a frame's worth before we read on; an honest
            # sender gives up on a frame that has not moved for the host's send_timeout
            raise ConfigError(f"p2p.recv_bytes_per_s must be more than {_HOST.max_frame / _HOST.send_timeout:.0f} "
                              f"(one {_HOST.max_frame}-byte frame in the {_HOST.send_timeout:.0f} s a sender waits)")
        if self.socket_buffer_bytes < 4096:
            raise ConfigError(f"p2p.socket_buffer_bytes must be at least 4096, got {self.socket_buffer_bytes}")
        per_connection = compute_connection_bytes(self.socket_buffer_bytes)
        if self.conn_bytes < (self.max_outbound + 1) * per_connection:
            raise ConfigError(f"p2p.conn_bytes ({self.conn_bytes}) must hold max_outbound + 1 connections of "
                              f"{per_connection} bytes (with socket_buffer_bytes = {self.socket_buffer_bytes})")


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 26657
    max_body_bytes: int = 16 << 20  # artifacts and job messages; txs are capped by the ledger
    rate_limit_per_s: int = 200  # per client IP; a batch costs one token per tx
    max_batch_txs: int = 1_000  # txs in one POST /txs/batch
    admin_token: str = ""  # empty: admin endpoints disabled
    # Content stored through POST /artifacts (docs/api.md, "Upload quota"); an object the
    # node holds already is never charged again.
    upload_quota_bytes: int = 8 << 30  # API uploads and peer fetches kept at once; past it the oldest evictable go, else 507
    upload_client_bytes: int = 1 << 30  # new bytes one client (IPv4 address, IPv6 /64) may upload per window
    upload_window_s: int = 3600  # ... and the window: that allowance refills evenly over it
    upload_evict_after_s: int = 3600  # an upload no job needs may be evicted this long after its last upload
    # Slow or stalled clients (docs/api.md, "Slow clients")
    header_timeout_s: int = 10  # a connection's request headers, from its opening or previous response
    body_timeout_s: int = 120  # a request's whole body, from its headers (16 MiB: at least ~140 KB/s)
    send_timeout_s: int = 30  # an artifact download whose client reads nothing this long is cut off
    max_downloads: int = 16  # GET /artifacts answers held in memory at once; the others wait their turn
    max_body_bytes_in_flight: int = 256 << 20  # request bodies held at once, all clients; past it 503 node_busy

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "rate_limit_per_s", "max_batch_txs", "upload_window_s", "header_timeout_s",
                     "body_timeout_s", "send_timeout_s", "max_downloads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"api.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("upload_quota_bytes", "upload_client_bytes", "upload_evict_after_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"api.{name} must be 0 or more, got {getattr(self, name)}")
        if self.max_body_bytes_in_flight < self.max_body_bytes:
            raise ConfigError(f"api.max_body_bytes_in_flight ({self.max_body_bytes_in_flight}) must hold at least "
                              f"one body of max_body_bytes ({self.max_body_bytes})")


@dataclass(frozen=True)
class MempoolConfig:
    max_txs: int = 20_000
    max_bytes: int = 64 << 20
    max_per_sender: int = 1_000


@dataclass(frozen=True)
class StoreConfig:
    # SQLite's quick_check of chain.db at start: a damaged file is refused with a clear error
    # instead of failing later (~0.3 s per 200 MiB cached, ~5 s from a cold disk)
    check_on_start: bool = True


@dataclass(frozen=True)
class Capabilities:
    cpus: int = 1
    memory_mb: int = 1024
    gpus: int = 0
    gpu_memory_mb: int = 0
    bandwidth_mbps: int = 100
    node_type: str = "cpu"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    chain_id: str
    roles: tuple[str, ...] = ("validator",)
    key_name: str = "node"
    log_level: str = "info"
    log_max_bytes: int = 64 << 20  # node.log is rotated at this size
    log_backups: int = 4  # rotated files kept: node.log.1 ... node.log.4
    p2p: P2PConfig = field(default_factory=P2PConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    capabilities: Capabilities = field(default_factory=Capabilities)

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= 64 or not self.name.isprintable() or self.name != self.name.strip():
            raise ConfigError(f"name must be 1 to 64 printable characters without leading or trailing spaces, "
                              f"got {self.name!r}")
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown or not self.roles:
            raise ConfigError(f"roles must be a non-empty subset of {ROLES}, got {list(self.roles)}")
        if self.capabilities.node_type not in NODE_TYPES:
            raise ConfigError(f"capabilities.node_type must be one of {NODE_TYPES}")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {LOG_LEVELS}, got {self.log_level!r}")
        if self.log_max_bytes < 4096 or self.log_backups < 1:
            raise ConfigError("log_max_bytes must be at least 4096 and log_backups at least 1")
        for port in (self.p2p.port, self.api.port):
            if not 0 <= port <= 65535:
                raise ConfigError(f"port {port} out of range")

    def has_role(self, role: str) -> bool:
        return role in self.roles


_SECTIONS = {"p2p": P2PConfig, "api": ApiConfig, "mempool": MempoolConfig, "store": StoreConfig,
             "capabilities": Capabilities}


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    """Build a section dataclass from TOML, checking names and types against the defaults."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table, got {type(raw).__name__}")
    known = {f.name: f.default for f in fields(cls)}
    extra = set(raw) - set(known)
    if extra:
        raise ConfigError(f"unknown keys in [{where}]: {sorted(extra)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = known[name]
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{name} must be a list of strings")
            value = tuple(value)
        elif type(value) is not type(default):  # bool is not int here
            raise ConfigError(f"{where}.{name} must be {type(default).__name__}, got {type(value).__name__}")
        values[name] = value
    return cls(**values)


def load_config(path: Path) -> NodeConfig:
    try:
        raw = load_toml(read_utf8(path))
    except FileNotFoundError:
        raise ConfigError(f"no config at {path} (run `bcai node init --home DIR`)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    node = raw.get("node", {})
    if not isinstance(node, dict):
        raise ConfigError(f"{path}: [node] must be a table")
    node = dict(node)
    for name, kind in (("name", str), ("chain_id", str), ("key_name", str), ("log_level", str)):
        if name in node and not isinstance(node[name], kind):
            raise ConfigError(f"{path}: node.{name} must be a string")
    for name in ("log_max_bytes", "log_backups"):
        if name in node and type(node[name]) is not int:
            raise ConfigError(f"{path}: node.{name} must be an integer")
    if "roles" in node and (not isinstance(node["roles"], list)
                            or not all(isinstance(r, str) for r in node["roles"])):
        raise ConfigError(f"{path}: node.roles must be a list of strings")
    sections = {key: _build(cls, raw.get(key, {}), key) for key, cls in _SECTIONS.items()}
    extra = set(raw) - set(_SECTIONS) - {"node"}
    if extra:
        raise ConfigError(f"{path}: unknown sections {sorted(extra)}")
    try:
        if "roles" in node:
            node["roles"] = tuple(node["roles"])
        return NodeConfig(**node, **sections)
    except TypeError as exc:
        raise ConfigError(f"{path}: bad [node] section: {exc}") from None


def save_config(config: NodeConfig, path: Path) -> None:
    data = asdict(config)
    node = {k: v for k, v in data.items() if k not in _SECTIONS}
    doc: dict[str, Any] = {"node": node, **{k: data[k] for k in _SECTIONS}}
    Path(path).write_text(tomli_w.dumps(_lists(doc)))


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_lists(v) for v in value]
    return value
