"""Node telemetry samples, reputation and the health score (SPEC F, seed 003).

`health = 0.4*bandwidth + 0.3*latency + 0.2*compute + 0.1*reputation`, each component in
[0, 1]:

- bandwidth: min(up, down) / 1000 Mbps, capped at 1 (the bottleneck direction counts);
- latency: 1 - ms / 100, floored at 0 (0 ms scores 1);
- compute: the free share of CPU and memory, ((100 - cpu%) + (100 - mem%)) / 200, as the
  seed's `compute_score`;
- reputation: completed / (completed + failed) minus 0.05 per dispute (at most 0.3),
  clamped to [0, 1]; a node with no finished task scores the neutral 0.5.

A node is healthy when its score is strictly above 0.5. These float scores drive the
off-chain strategies; the on-chain path uses the integer twin in `onchain.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bcai.errors import InvalidTelemetry
from bcai.scheduler.checks import check_count, check_name

BANDWIDTH_REFERENCE_MBPS = 1000.0
LATENCY_REFERENCE_MS = 100.0
HEALTHY_THRESHOLD = 0.5
NEUTRAL_REPUTATION = 0.5
DISPUTE_PENALTY = 0.05
MAX_DISPUTE_PENALTY = 0.3

WEIGHT_BANDWIDTH = 0.4
WEIGHT_LATENCY = 0.3
WEIGHT_COMPUTE = 0.2
WEIGHT_REPUTATION = 0.1


def _check_real(name: str, value: object, *, low: float | None = 0.0, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTelemetry(f"{name} must be a number, got {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond float range
        finite = False
    if not finite:
        raise InvalidTelemetry(f"{name} must be finite, got {value!r}")
    if low is not None and value < low:
        raise InvalidTelemetry(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise InvalidTelemetry(f"{name} must be <= {high}, got {value!r}")


@dataclass(frozen=True)
class TelemetrySample:
    """One telemetry report from a node.

    `timestamp` is Unix seconds as reported (the core never reads a clock); use
    percentages in [0, 100]; `error_count` is the node's recent error count.
    """

    node_id: str
    timestamp: int
    bandwidth_up_mbps: float
    bandwidth_down_mbps: float
    latency_ms: float
    cpu_use_percent: float
    memory_use_percent: float = 0.0
    gpu_use_percent: float = 0.0
    temperature_c: float = 0.0
    error_count: int = 0

    def __post_init__(self) -> None:
        check_name(InvalidTelemetry, "node_id", self.node_id)
        check_count(InvalidTelemetry, "timestamp", self.timestamp)
        _check_real("bandwidth_up_mbps", self.bandwidth_up_mbps)
        _check_real("bandwidth_down_mbps", self.bandwidth_down_mbps)
        _check_real("latency_ms", self.latency_ms)
        for name in ("cpu_use_percent", "memory_use_percent", "gpu_use_percent"):
            _check_real(name, getattr(self, name), high=100.0)
        _check_real("temperature_c", self.temperature_c, low=-273.15)
        check_count(InvalidTelemetry, "error_count", self.error_count)


@dataclass(frozen=True)
class Reputation:
    """Finished-task record of a node: the input of the reputation score."""

    completed_tasks: int = 0
    failed_tasks: int = 0
    disputes: int = 0

    def __post_init__(self) -> None:
        check_count(InvalidTelemetry, "completed_tasks", self.completed_tasks)
        check_count(InvalidTelemetry, "failed_tasks", self.failed_tasks)
        check_count(InvalidTelemetry, "disputes", self.disputes)


@dataclass(frozen=True)
class HealthScore:
    """The four components and their weighted total, each in [0, 1]."""

    bandwidth: float
    latency: float
    compute: float
    reputation: float
    total: float

    @property
    def is_healthy(self) -> bool:
        return is_healthy(self.total)


def compute_bandwidth_score(sample: TelemetrySample) -> float:
    effective = min(sample.bandwidth_up_mbps, sample.bandwidth_down_mbps)
    return min(effective / BANDWIDTH_REFERENCE_MBPS, 1.0)


def compute_latency_score(sample: TelemetrySample) -> float:
    return max(1.0 - sample.latency_ms / LATENCY_REFERENCE_MS, 0.0)


def compute_compute_score(sample: TelemetrySample) -> float:
    free = (100.0 - sample.cpu_use_percent) + (100.0 - sample.memory_use_percent)
    return min(max(free / 200.0, 0.0), 1.0)


def compute_reputation_score(reputation: Reputation) -> float:
    total = reputation.completed_tasks + reputation.failed_tasks
    if total == 0:
        return NEUTRAL_REPUTATION
    success_rate = reputation.completed_tasks / total
    # Capping the count first keeps a huge dispute count from overflowing the float.
    penalty = min(min(reputation.disputes, 1000) * DISPUTE_PENALTY, MAX_DISPUTE_PENALTY)
    return min(max(success_rate - penalty, 0.0), 1.0)


def compute_health(sample: TelemetrySample, reputation: Reputation | None = None) -> HealthScore:
    """The health score of a node from its latest sample and its reputation.

    >>> s = TelemetrySample("n1", 0, 500.0, 800.0, 20.0, 50.0, 50.0)
    >>> round(compute_health(s).total, 4)  # 0.4*0.5 + 0.3*0.8 + 0.2*0.5 + 0.1*0.5
    0.59
    """
    rep = reputation if reputation is not None else Reputation()
    bandwidth = compute_bandwidth_score(sample)
    latency = compute_latency_score(sample)
    compute = compute_compute_score(sample)
    reputation_score = compute_reputation_score(rep)
    total = (
        WEIGHT_BANDWIDTH * bandwidth
        + WEIGHT_LATENCY * latency
        + WEIGHT_COMPUTE * compute
        + WEIGHT_REPUTATION * reputation_score
    )
    return HealthScore(bandwidth, latency, compute, reputation_score, total)


def is_healthy(score: float) -> bool:
    return score > HEALTHY_THRESHOLD
