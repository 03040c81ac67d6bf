"""The on-chain assignment: every validator picks the same workers from chain state.

`compute_assignment(volunteers, policy, seed_bytes)` is a pure function of integers and
bytes. No floats: float rounding (fused multiply-add, x87 vs SSE, `libm` differences) is
not guaranteed identical across platforms, and one differing bit would split consensus.
So volunteer telemetry is carried in integer units and health is fixed-point, in parts
per million (ppm):

- bandwidth_ppm = min(min(up_kbps, down_kbps), 1_000_000)   (1000 Mbps = 1e6 kbps = 1.0)
- latency_ppm   = max(0, 1_000_000 - 10 * latency_us)        (100 ms = 1e5 us = 0.0)
- compute_ppm   = ((1000 - cpu_permille) + (1000 - mem_permille)) * 500
- reputation_ppm = 500_000 with no finished task, else
  completed * 1e6 // total - min(disputes * 50_000, 300_000), floored at 0
- health_ppm    = (4 * bandwidth + 3 * latency + 2 * compute + 1 * reputation) // 10

which is the float formula of `telemetry.py` scaled by 1e6 and floored (they agree
within 1 ppm; a test pins that).

Selection: a volunteer is eligible when it passes the integer admission rules
(capabilities, node type, not deleted, below the per-node cap, not already assigned),
stays within the safety policy, and is healthy (health_ppm > 500_000). Volunteering is
itself the liveness signal on chain, so the 90 s heartbeat rule belongs to the off-chain
path. Among the eligible, `min_nodes - len(already_assigned)` are drawn without
replacement by a health-weighted lottery: draw k uses r = SHA-256(domain || seed ||
k) mod (sum of remaining weights), and walks the remaining volunteers in node-id order.
The seed should be chain state nobody controls alone (e.g. the hash of the block that
posted the job); weighting by health favours good nodes without handing every job to
the single best one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord
from bcai.scheduler.admission import DEFAULT_MAX_CONCURRENT_TASKS, JobPolicy, NodeCapabilities, compute_capability_rejections
from bcai.scheduler.checks import check_count, check_name
from bcai.scheduler.telemetry import Reputation, TelemetrySample

PPM = 1_000_000
HEALTHY_PPM = 500_000
MAX_TEMPERATURE_MILLI_C = 85_000
MAX_LATENCY_US = 100_000
MAX_ERROR_COUNT = 25
_DOMAIN = b"bcai/scheduler/assignment/v1"


@dataclass(frozen=True)
class OnchainTelemetry:
    """A telemetry sample in the integer units the chain carries."""

    bandwidth_up_kbps: int
    bandwidth_down_kbps: int
    latency_us: int
    cpu_use_permille: int
    memory_use_permille: int = 0
    temperature_milli_c: int = 0
    error_count: int = 0

    def __post_init__(self) -> None:
        for name in ("bandwidth_up_kbps", "bandwidth_down_kbps", "latency_us", "error_count"):
            check_count(InvalidNodeRecord, name, getattr(self, name))
        for name in ("cpu_use_permille", "memory_use_permille"):
            check_count(InvalidNodeRecord, name, getattr(self, name))
            if getattr(self, name) > 1000:
                raise InvalidNodeRecord(f"{name} must be at most 1000, got {getattr(self, name)!r}")
        if isinstance(self.temperature_milli_c, bool) or not isinstance(self.temperature_milli_c, int):
            raise InvalidNodeRecord(f"temperature_milli_c must be an integer, got {self.temperature_milli_c!r}")


@dataclass(frozen=True)
class Volunteer:
    """A worker that volunteered for a job, as chain state records it."""

    node_id: str
    capabilities: NodeCapabilities
    telemetry: OnchainTelemetry
    reputation: Reputation = Reputation()
    node_type: str = "any"
    active_tasks: int = 0
    deleted: bool = False

    def __post_init__(self) -> None:
        check_name(InvalidNodeRecord, "node_id", self.node_id)
        if not isinstance(self.capabilities, NodeCapabilities):
            raise InvalidNodeRecord("capabilities must be a NodeCapabilities")
        if not isinstance(self.telemetry, OnchainTelemetry):
            raise InvalidNodeRecord("telemetry must be an OnchainTelemetry")
        if not isinstance(self.reputation, Reputation):
            raise InvalidNodeRecord("reputation must be a Reputation")
        if not isinstance(self.deleted, bool):
            raise InvalidNodeRecord(f"deleted must be a bool, got {self.deleted!r}")
        check_name(InvalidNodeRecord, "node_type", self.node_type)
        check_count(InvalidNodeRecord, "active_tasks", self.active_tasks)


def compute_onchain_telemetry(sample: TelemetrySample) -> OnchainTelemetry:
    """Convert a float sample to chain units (node side, before the volunteer tx is signed)."""
    return OnchainTelemetry(
        bandwidth_up_kbps=int(sample.bandwidth_up_mbps * 1000),
        bandwidth_down_kbps=int(sample.bandwidth_down_mbps * 1000),
        latency_us=int(sample.latency_ms * 1000),
        cpu_use_permille=int(sample.cpu_use_percent * 10),
        memory_use_permille=int(sample.memory_use_percent * 10),
        temperature_milli_c=int(sample.temperature_c * 1000),
        error_count=sample.error_count,
    )


def compute_reputation_ppm(reputation: Reputation) -> int:
    total = reputation.completed_tasks + reputation.failed_tasks
    if total == 0:
        return PPM // 2
    penalty = min(reputation.disputes * 50_000, 300_000)
    return max(reputation.completed_tasks * PPM // total - penalty, 0)


def compute_health_ppm(telemetry: OnchainTelemetry, reputation: Reputation) -> int:
    bandwidth = min(telemetry.bandwidth_up_kbps, telemetry.bandwidth_down_kbps, PPM)
    latency = max(PPM - 10 * telemetry.latency_us, 0)
    compute = ((1000 - telemetry.cpu_use_permille) + (1000 - telemetry.memory_use_permille)) * 500
    return (4 * bandwidth + 3 * latency + 2 * compute + compute_reputation_ppm(reputation)) // 10


def is_onchain_within_policy(telemetry: OnchainTelemetry) -> bool:
    return (
        telemetry.temperature_milli_c <= MAX_TEMPERATURE_MILLI_C
        and telemetry.latency_us <= MAX_LATENCY_US
        and telemetry.error_count <= MAX_ERROR_COUNT
    )


def is_eligible_volunteer(
    volunteer: Volunteer, policy: JobPolicy, *, max_tasks: int, already_assigned: frozenset[str]
) -> bool:
    return (
        not volunteer.deleted
        and volunteer.node_id not in already_assigned
        and volunteer.active_tasks < max_tasks
        and not compute_capability_rejections(volunteer.capabilities, volunteer.node_type, policy)
        and is_onchain_within_policy(volunteer.telemetry)
        and compute_health_ppm(volunteer.telemetry, volunteer.reputation) > HEALTHY_PPM
    )


def compute_assignment(
    volunteers: Sequence[Volunteer],
    policy: JobPolicy,
    seed_bytes: bytes,
    *,
    already_assigned: Sequence[str] = (),
    max_tasks: int = DEFAULT_MAX_CONCURRENT_TASKS,
) -> tuple[str, ...]:
    """The node ids chosen for the job, in draw order (fewer when too few are eligible).

    `policy.min_health` (a float) is not used here; the chain's health floor is the
    fixed `HEALTHY_PPM`.
    """
    if not isinstance(seed_bytes, bytes) or not seed_bytes:
        raise InvalidJobPolicy("seed_bytes must be non-empty bytes")
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
        raise InvalidJobPolicy(f"max_tasks must be a positive integer, got {max_tasks!r}")
    ids = [v.node_id for v in volunteers]
    if len(set(ids)) != len(ids):
        raise InvalidNodeRecord("volunteers hold the same node id twice")
    assigned = frozenset(already_assigned)
    needed = policy.min_nodes - len(assigned)
    pool = sorted(
        (
            (v.node_id, compute_health_ppm(v.telemetry, v.reputation))
            for v in volunteers
            if is_eligible_volunteer(v, policy, max_tasks=max_tasks, already_assigned=assigned)
        )
    )
    chosen: list[str] = []
    draw = 0
    while needed > 0 and pool:
        total = sum(weight for _, weight in pool)
        digest = hashlib.sha256(_DOMAIN + len(seed_bytes).to_bytes(4, "big") + seed_bytes + draw.to_bytes(4, "big"))
        ticket = int.from_bytes(digest.digest(), "big") % total
        for index, (node_id, weight) in enumerate(pool):
            if ticket < weight:
                chosen.append(node_id)
                del pool[index]
                break
            ticket -= weight
        draw += 1
        needed -= 1
    return tuple(chosen)
