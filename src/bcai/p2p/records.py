"""Node ids, signed node records and capability queries.

A node's id is SHA-256 of its ed25519 public key (the Kademlia key space). A node record
says where to reach the node and what it offers; it is signed by the node (domain
`"node-record"`, the network id as chain id) and carries a sequence number, so a newer
record replaces an older one and nobody can forge or roll back another node's record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bcai.crypto import PrivateKey, PublicKey, sha256
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidNodeRecord

RECORD_DOMAIN = "node-record"
ROLES = frozenset({"validator", "worker", "evaluator", "client"})
# Capability names are small identifiers with non-negative integer values
# (cpus, memory_mb, gpus, gpu_memory_mb, bandwidth_mbps, ...): no floats in signed objects.
_CAPABILITY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_ADDRESS = re.compile(r"[A-Za-z0-9.\-:\[\]_]{1,255}")
MAX_CAPABILITIES = 32
MAX_RECORD_BYTES = 4096


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """32 bytes: SHA-256 of the node's ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise InvalidNodeRecord("a node id is 32 bytes")

    @classmethod
    def of(cls, public_key: PublicKey) -> NodeId:
        return cls(sha256(public_key.raw))

    @classmethod
    def parse(cls, text: str) -> NodeId:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidNodeRecord(f"a node id is 64 hex digits: {text!r}") from None
        return cls(raw)

    def __str__(self) -> str:
        return self.raw.hex()

    def __repr__(self) -> str:
        return f"NodeId({self.raw.hex()[:12]})"


def parse_peer_address(text: str) -> tuple[NodeId, str]:
    """Split a bootstrap address `<node id hex>@host:port` into (node id, "host:port")."""
    node, sep, address = text.partition("@")
    if not sep or not _ADDRESS.fullmatch(address) or ":" not in address:
        raise InvalidNodeRecord(f"expected <node id hex>@host:port, got {text!r}")
    return NodeId.parse(node), address


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """Where a node listens and what it offers."""

    public_key: PublicKey
    address: str
    roles: frozenset[str] = frozenset()
    capabilities: dict[str, int] = field(default_factory=dict)
    seq: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not _ADDRESS.fullmatch(self.address):
            raise InvalidNodeRecord(f"bad node address {self.address!r}")
        if not self.roles <= ROLES:
            raise InvalidNodeRecord(f"unknown roles {sorted(self.roles - ROLES)}")
        if len(self.capabilities) > MAX_CAPABILITIES:
            raise InvalidNodeRecord("too many capabilities")
        for name, value in self.capabilities.items():
            if not isinstance(name, str) or not _CAPABILITY.fullmatch(name):
                raise InvalidNodeRecord(f"bad capability name {name!r}")
            if type(value) is not int or not 0 <= value < 2**63:
                raise InvalidNodeRecord(f"capability {name} must be a non-negative int")
        if type(self.seq) is not int or not 0 <= self.seq < 2**63:
            raise InvalidNodeRecord("seq must be a non-negative int")

    @property
    def node_id(self) -> NodeId:
        return NodeId.of(self.public_key)

    def to_obj(self) -> dict[str, Any]:
        return {
            "key": self.public_key.raw,
            "addr": self.address,
            "roles": sorted(self.roles),
            "caps": dict(self.capabilities),
            "seq": self.seq,
        }

    @classmethod
    def from_obj(cls, obj: Any) -> NodeRecord:
        if not isinstance(obj, dict) or set(obj) != {"key", "addr", "roles", "caps", "seq"}:
            raise InvalidNodeRecord("a node record is a map of key, addr, roles, caps, seq")
        roles, caps = obj["roles"], obj["caps"]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidNodeRecord("roles must be a list of strings")
        if not isinstance(caps, dict):
            raise InvalidNodeRecord("caps must be a map")
        try:
            key = PublicKey(obj["key"])
        except BcaiError as exc:
            raise InvalidNodeRecord(str(exc)) from None
        return cls(key, obj["addr"], frozenset(roles), dict(caps), obj["seq"])

    def sign(self, key: PrivateKey, network_id: str) -> SignedNodeRecord:
        if key.public_key != self.public_key:
            raise InvalidNodeRecord("a node record is signed by its own node")
        body = encode(self.to_obj())
        return SignedNodeRecord(self, key.sign(RECORD_DOMAIN, network_id, body))


@dataclass(frozen=True, slots=True)
class SignedNodeRecord:
    record: NodeRecord
    signature: bytes

    @property
    def node_id(self) -> NodeId:
        return self.record.node_id

    def verify(self, network_id: str) -> None:
        """Raise `InvalidNodeRecord` unless the node itself signed this record."""
        body = encode(self.record.to_obj())
        if not self.record.public_key.is_valid_signature(RECORD_DOMAIN, network_id, body, self.signature):
            raise InvalidNodeRecord(f"bad signature on the record of {self.node_id!r}")

    def to_bytes(self) -> bytes:
        return encode([self.record.to_obj(), self.signature])

    @classmethod
    def from_bytes(cls, data: bytes, network_id: str) -> SignedNodeRecord:
        """Decode and verify a signed record received from someone else."""
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidNodeRecord("node record too large")
        try:
            obj = decode(data)
        except BcaiError as exc:
            raise InvalidNodeRecord(f"undecodable node record: {exc}") from None
        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[1], bytes):
            raise InvalidNodeRecord("a signed record is [record, signature]")
        signed = cls(NodeRecord.from_obj(obj[0]), obj[1])
        signed.verify(network_id)
        return signed


@dataclass(frozen=True, slots=True)
class CapabilityQuery:
    """Which nodes to find: each named capability at least the given value, all roles held.

    `CapabilityQuery(min_capabilities={"gpus": 4})` finds nodes with 4 or more GPUs. The
    query is plain data so peers can filter their cached records for us; we filter again.
    """

    min_capabilities: dict[str, int] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # A record holds at most MAX_CAPABILITIES: more conditions only cost the answerer CPU.
        if len(self.min_capabilities) > MAX_CAPABILITIES:
            raise InvalidNodeRecord(f"a capability query has at most {MAX_CAPABILITIES} conditions")
        for name, value in self.min_capabilities.items():
            if not isinstance(name, str) or not _CAPABILITY.fullmatch(name) or type(value) is not int:
                raise InvalidNodeRecord(f"bad capability condition {name!r} >= {value!r}")
        if not self.roles <= ROLES:
            raise InvalidNodeRecord(f"unknown roles {sorted(self.roles - ROLES)}")

    def is_match(self, record: NodeRecord) -> bool:
        if not self.roles <= record.roles:
            return False
        return all(record.capabilities.get(n, 0) >= v for n, v in self.min_capabilities.items())

    def to_obj(self) -> dict[str, Any]:
        return {"caps": dict(self.min_capabilities), "roles": sorted(self.roles)}

    @classmethod
    def from_obj(cls, obj: Any) -> CapabilityQuery:
        if not isinstance(obj, dict) or set(obj) != {"caps", "roles"}:
            raise InvalidNodeRecord("a capability query is a map of caps, roles")
        if not isinstance(obj["caps"], dict) or not isinstance(obj["roles"], list):
            raise InvalidNodeRecord("malformed capability query")
        if not all(isinstance(r, str) for r in obj["roles"]):
            raise InvalidNodeRecord("roles must be strings")
        return cls(dict(obj["caps"]), frozenset(obj["roles"]))
