"""Admission control: which nodes may take a job (SPEC F, seed 003's API-server rules).

A node is admitted when all of these hold:

1. online: its last heartbeat is at most `HEARTBEAT_TIMEOUT_S` (90 s) before `now`
   (inclusive, as the seed's `last_heartbeat >= NOW() - 90 s`); `now` is an argument;
2. not soft-deleted;
3. its capabilities satisfy the job policy: CPU cores, memory, bandwidth, and, when the
   job asks for GPUs, GPU count and per-GPU memory;
4. its node type equals the job's `preferred_node_type`, or is the universal `"any"`
   (exactly the seed's `node_type = $preferred OR node_type = 'any'`: a job cannot ask
   for "any"-typed nodes only by writing "any"; nodes typed "any" serve every job);
5. it holds fewer active assignments than the per-node cap (`compute_max_concurrent_tasks`).

All quantities are integers (MiB, Mbps) so the same records and rules serve the
on-chain assignment (`onchain.py`), where floats are not allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord
from bcai.scheduler.checks import check_count, check_name, is_count

HEARTBEAT_TIMEOUT_S = 90
ANY_NODE_TYPE = "any"
MAX_CONCURRENT_TASKS_ENV = "MAX_CONCURRENT_TASKS_PER_NODE"
LEGACY_MAX_TASKS_ENV = "MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE"
DEFAULT_MAX_CONCURRENT_TASKS = 50
_I64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")

# Rejection reasons (stable strings: they appear in API and CLI output).
OFFLINE = "offline"
DELETED = "deleted"
INSUFFICIENT_CPU = "insufficient_cpu"
INSUFFICIENT_MEMORY = "insufficient_memory"
INSUFFICIENT_BANDWIDTH = "insufficient_bandwidth"
INSUFFICIENT_GPU = "insufficient_gpu"
INSUFFICIENT_GPU_MEMORY = "insufficient_gpu_memory"
NODE_TYPE_MISMATCH = "node_type_mismatch"
AT_CAPACITY = "at_capacity"


@dataclass(frozen=True)
class NodeCapabilities:
    """What a node offers: cores, memory (MiB), bandwidth (Mbps), GPUs and per-GPU memory (MiB)."""

    cpu_cores: int
    memory_mib: int
    bandwidth_mbps: int
    gpu_count: int = 0
    gpu_memory_mib: int = 0

    def __post_init__(self) -> None:
        for name in ("cpu_cores", "memory_mib", "bandwidth_mbps", "gpu_count", "gpu_memory_mib"):
            check_count(InvalidNodeRecord, name, getattr(self, name))


@dataclass(frozen=True)
class NodeRecord:
    """A registered node as the registry knows it."""

    node_id: str
    capabilities: NodeCapabilities
    node_type: str = ANY_NODE_TYPE
    last_heartbeat: int | None = None
    deleted: bool = False

    def __post_init__(self) -> None:
        check_name(InvalidNodeRecord, "node_id", self.node_id)
        check_name(InvalidNodeRecord, "node_type", self.node_type)
        if not isinstance(self.capabilities, NodeCapabilities):
            raise InvalidNodeRecord("capabilities must be a NodeCapabilities")
        if self.last_heartbeat is not None and not is_count(self.last_heartbeat):
            raise InvalidNodeRecord(f"last_heartbeat must be a non-negative integer or None, got {self.last_heartbeat!r}")
        if not isinstance(self.deleted, bool):
            raise InvalidNodeRecord(f"deleted must be a bool, got {self.deleted!r}")


@dataclass(frozen=True)
class JobPolicy:
    """A job's placement needs. `min_nodes` is how many nodes the job attaches, never more.

    `min_gpu_count` 0 means no GPU is needed; `min_health` is the health score a node
    must exceed (SPEC F: healthy above 0.5).
    """

    min_nodes: int = 1
    min_cpu_cores: int = 0
    min_memory_mib: int = 0
    min_bandwidth_mbps: int = 0
    min_gpu_count: int = 0
    min_gpu_memory_mib: int = 0
    preferred_node_type: str = "compute"
    min_health: float = 0.5

    def __post_init__(self) -> None:
        if not is_count(self.min_nodes) or self.min_nodes < 1:
            raise InvalidJobPolicy(f"min_nodes must be a positive integer, got {self.min_nodes!r}")
        for name in ("min_cpu_cores", "min_memory_mib", "min_bandwidth_mbps", "min_gpu_count", "min_gpu_memory_mib"):
            check_count(InvalidJobPolicy, name, getattr(self, name))
        check_name(InvalidJobPolicy, "preferred_node_type", self.preferred_node_type)
        if isinstance(self.min_health, bool) or not isinstance(self.min_health, (int, float)) or not 0 <= self.min_health <= 1:
            raise InvalidJobPolicy(f"min_health must be a number in [0, 1], got {self.min_health!r}")


def compute_max_concurrent_tasks(env: Mapping[str, str]) -> int:
    """The per-node cap on active assignments, from an environment mapping.

    As the seed: the preferred `MAX_CONCURRENT_TASKS_PER_NODE` wins whenever it is set,
    even when its value is invalid (then the default applies; the legacy key is not
    consulted); otherwise `MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE`. A value counts when it
    is a base-10 integer (optional sign, no spaces, within signed 64-bit) above 0;
    anything else gives 50.

    >>> compute_max_concurrent_tasks({"MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "7"})
    7
    >>> compute_max_concurrent_tasks({"MAX_CONCURRENT_TASKS_PER_NODE": "0"})
    50
    """
    if MAX_CONCURRENT_TASKS_ENV in env:
        raw = env[MAX_CONCURRENT_TASKS_ENV]
    elif LEGACY_MAX_TASKS_ENV in env:
        raw = env[LEGACY_MAX_TASKS_ENV]
    else:
        return DEFAULT_MAX_CONCURRENT_TASKS
    if not isinstance(raw, str) or not _INTEGER.fullmatch(raw):
        return DEFAULT_MAX_CONCURRENT_TASKS
    value = int(raw)
    if value <= 0 or value > _I64_MAX:
        return DEFAULT_MAX_CONCURRENT_TASKS
    return value


def is_online(node: NodeRecord, now: int) -> bool:
    return node.last_heartbeat is not None and node.last_heartbeat >= now - HEARTBEAT_TIMEOUT_S


def is_node_type_match(node_type: str, preferred_node_type: str) -> bool:
    return node_type == preferred_node_type or node_type == ANY_NODE_TYPE


def compute_capability_rejections(caps: NodeCapabilities, node_type: str, policy: JobPolicy) -> tuple[str, ...]:
    """Rules 3 and 4 (capabilities, node type): shared by the off-chain and on-chain paths."""
    reasons = []
    if caps.cpu_cores < policy.min_cpu_cores:
        reasons.append(INSUFFICIENT_CPU)
    if caps.memory_mib < policy.min_memory_mib:
        reasons.append(INSUFFICIENT_MEMORY)
    if caps.bandwidth_mbps < policy.min_bandwidth_mbps:
        reasons.append(INSUFFICIENT_BANDWIDTH)
    if policy.min_gpu_count > 0:
        if caps.gpu_count < policy.min_gpu_count:
            reasons.append(INSUFFICIENT_GPU)
        if caps.gpu_memory_mib < policy.min_gpu_memory_mib:
            reasons.append(INSUFFICIENT_GPU_MEMORY)
    if not is_node_type_match(node_type, policy.preferred_node_type):
        reasons.append(NODE_TYPE_MISMATCH)
    return tuple(reasons)


def compute_admission_rejections(
    node: NodeRecord, policy: JobPolicy, *, now: int, active_tasks: int, max_tasks: int
) -> tuple[str, ...]:
    """Every rule the node fails for this job (empty: admitted)."""
    if not is_count(now):
        raise InvalidJobPolicy(f"now must be a non-negative integer (Unix seconds), got {now!r}")
    check_count(InvalidNodeRecord, "active_tasks", active_tasks)
    if not is_count(max_tasks) or max_tasks < 1:
        raise InvalidJobPolicy(f"max_tasks must be a positive integer, got {max_tasks!r}")
    reasons = []
    if not is_online(node, now):
        reasons.append(OFFLINE)
    if node.deleted:
        reasons.append(DELETED)
    reasons.extend(compute_capability_rejections(node.capabilities, node.node_type, policy))
    if active_tasks >= max_tasks:
        reasons.append(AT_CAPACITY)
    return tuple(reasons)


def is_admissible(node: NodeRecord, policy: JobPolicy, *, now: int, active_tasks: int, max_tasks: int) -> bool:
    return not compute_admission_rejections(node, policy, now=now, active_tasks=active_tasks, max_tasks=max_tasks)
