"""`select_nodes`: admission, safety breaker, health floor, then a strategy (off-chain).

This is the scheduler core the node's job flow calls: give it every candidate with its
latest telemetry, reputation, breaker state and active-assignment count; it returns the
nodes to attach (never more than the job still needs: `min_nodes` minus the nodes
already active on it) and, for every node left out, why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord
from bcai.scheduler.admission import JobPolicy, NodeRecord, compute_admission_rejections
from bcai.scheduler.safety import BreakerState, SafetyPolicy, compute_safety_violations
from bcai.scheduler.strategies.base import AssignmentStrategy, NodeView
from bcai.scheduler.telemetry import Reputation, TelemetrySample, compute_health

NO_TELEMETRY = "no_telemetry"
CIRCUIT_OPEN = "circuit_open"
UNHEALTHY = "unhealthy"
ALREADY_ASSIGNED = "already_assigned"


@dataclass(frozen=True)
class Candidate:
    """One node as the scheduler sees it when placing a job."""

    node: NodeRecord
    sample: TelemetrySample | None
    reputation: Reputation = field(default_factory=Reputation)
    breaker: BreakerState | None = None
    active_tasks: int = 0
    assigned_to_job: bool = False

    def __post_init__(self) -> None:
        if self.sample is not None and self.sample.node_id != self.node.node_id:
            raise InvalidNodeRecord(f"sample of {self.sample.node_id!r} attached to node {self.node.node_id!r}")
        if self.breaker is not None and self.breaker.node_id != self.node.node_id:
            raise InvalidNodeRecord(f"breaker of {self.breaker.node_id!r} attached to node {self.node.node_id!r}")


@dataclass(frozen=True)
class Selection:
    """The chosen node ids (best first) and, per node left out, its rejection reasons."""

    chosen: tuple[str, ...]
    rejected: Mapping[str, tuple[str, ...]]
    needed: int


def compute_candidate_rejections(
    candidate: Candidate, policy: JobPolicy, *, now: int, max_tasks: int, safety: SafetyPolicy
) -> tuple[str, ...]:
    reasons = list(
        compute_admission_rejections(
            candidate.node, policy, now=now, active_tasks=candidate.active_tasks, max_tasks=max_tasks
        )
    )
    if candidate.assigned_to_job:
        reasons.append(ALREADY_ASSIGNED)
    if candidate.breaker is not None and candidate.breaker.tripped:
        reasons.append(CIRCUIT_OPEN)
    if candidate.sample is None:
        reasons.append(NO_TELEMETRY)
        return tuple(reasons)
    if candidate.breaker is None and compute_safety_violations(candidate.sample, safety):
        reasons.append(CIRCUIT_OPEN)
    if compute_health(candidate.sample, candidate.reputation).total <= policy.min_health:
        reasons.append(UNHEALTHY)
    return tuple(reasons)


def select_nodes(
    candidates: Sequence[Candidate],
    policy: JobPolicy,
    strategy: AssignmentStrategy,
    *,
    now: int,
    max_tasks: int,
    already_active: int = 0,
    safety: SafetyPolicy | None = None,
    last_selected: str | None = None,
) -> Selection:
    """Choose up to `policy.min_nodes - already_active` nodes for a job.

    `max_tasks` is the per-node cap (`compute_max_concurrent_tasks(os.environ)` in the
    shell); `now` is Unix seconds; a candidate without a breaker state is judged on its
    latest sample against `safety` (default `SafetyPolicy()`).
    """
    if isinstance(already_active, bool) or not isinstance(already_active, int) or already_active < 0:
        raise InvalidJobPolicy(f"already_active must be a non-negative integer, got {already_active!r}")
    ids = [c.node.node_id for c in candidates]
    if len(set(ids)) != len(ids):
        raise InvalidNodeRecord("candidates hold the same node id twice")
    rules = safety if safety is not None else SafetyPolicy()
    needed = max(policy.min_nodes - already_active, 0)
    admitted: list[NodeView] = []
    rejected: dict[str, tuple[str, ...]] = {}
    for candidate in candidates:
        reasons = compute_candidate_rejections(candidate, policy, now=now, max_tasks=max_tasks, safety=rules)
        if reasons:
            rejected[candidate.node.node_id] = reasons
            continue
        assert candidate.sample is not None  # no_telemetry would have rejected it
        health = compute_health(candidate.sample, candidate.reputation)
        admitted.append(NodeView(candidate.node.node_id, candidate.sample, health))
    chosen = strategy.select(admitted, needed, last_selected=last_selected)
    return Selection(chosen=chosen, rejected=rejected, needed=needed)
