"""The safety policy as a circuit breaker (SPEC F, seed 003).

A sample violates the policy when the temperature is above 85 C, the latency above
100 ms, or the error count above 25 (SPEC F says "more than 25 errors"; the seed's
`is_safe_mode` used `>= 25`, and SPEC wins). A violating sample trips the node's breaker:
the node leaves assignment. The breaker closes again after `recovery_samples`
consecutive later samples within policy (default 1, which is the seed's behaviour: its
safe mode is recomputed from the latest telemetry). Samples older than the last one seen
are ignored, so a delayed report cannot close (or trip) a breaker out of order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bcai.errors import InvalidTelemetry
from bcai.scheduler.telemetry import TelemetrySample

TEMPERATURE = "temperature"
LATENCY = "latency"
ERRORS = "errors"


@dataclass(frozen=True)
class SafetyPolicy:
    """Limits a node must stay within to receive work."""

    max_temperature_c: float = 85.0
    max_latency_ms: float = 100.0
    max_error_count: int = 25
    recovery_samples: int = 1

    def __post_init__(self) -> None:
        for name in ("max_temperature_c", "max_latency_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidTelemetry(f"{name} must be a finite number, got {value!r}")
        if isinstance(self.recovery_samples, bool) or not isinstance(self.recovery_samples, int) or self.recovery_samples < 1:
            raise InvalidTelemetry(f"recovery_samples must be a positive integer, got {self.recovery_samples!r}")
        if isinstance(self.max_error_count, bool) or not isinstance(self.max_error_count, int) or self.max_error_count < 0:
            raise InvalidTelemetry(f"max_error_count must be a non-negative integer, got {self.max_error_count!r}")


@dataclass(frozen=True)
class BreakerState:
    """The circuit breaker of one node after the samples seen so far."""

    node_id: str
    tripped: bool = False
    reasons: tuple[str, ...] = ()
    tripped_at: int | None = None
    good_streak: int = 0
    last_timestamp: int | None = None


def compute_safety_violations(sample: TelemetrySample, policy: SafetyPolicy) -> tuple[str, ...]:
    """Which limits the sample breaks (empty when within policy)."""
    reasons = []
    if sample.temperature_c > policy.max_temperature_c:
        reasons.append(TEMPERATURE)
    if sample.latency_ms > policy.max_latency_ms:
        reasons.append(LATENCY)
    if sample.error_count > policy.max_error_count:
        reasons.append(ERRORS)
    return tuple(reasons)


def is_within_policy(sample: TelemetrySample, policy: SafetyPolicy) -> bool:
    return not compute_safety_violations(sample, policy)


def process_sample(state: BreakerState | None, sample: TelemetrySample, policy: SafetyPolicy) -> BreakerState:
    """The breaker after `sample`; `state` None means no sample seen yet for this node."""
    # The sample must belong to the node whose breaker this is.
    if state is not None and state.node_id != sample.node_id:
        raise InvalidTelemetry(f"sample of {sample.node_id!r} given to the breaker of {state.node_id!r}")
    current = state if state is not None else BreakerState(node_id=sample.node_id)
    # Out-of-order (older) samples change nothing.
    if current.last_timestamp is not None and sample.timestamp < current.last_timestamp:
        return current
    violations = compute_safety_violations(sample, policy)
    if violations:
        tripped_at = current.tripped_at if current.tripped else sample.timestamp
        return BreakerState(sample.node_id, True, violations, tripped_at, 0, sample.timestamp)
    if not current.tripped:
        return BreakerState(sample.node_id, False, (), None, current.good_streak + 1, sample.timestamp)
    streak = current.good_streak + 1
    if streak >= policy.recovery_samples:
        return BreakerState(sample.node_id, False, (), None, streak, sample.timestamp)
    return BreakerState(sample.node_id, True, current.reasons, current.tripped_at, streak, sample.timestamp)
