import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bcai.errors import InvalidTelemetry
from bcai.scheduler import (
    BreakerState,
    Reputation,
    SafetyPolicy,
    TelemetrySample,
    compute_health,
    compute_safety_violations,
    is_healthy,
    process_sample,
)


def sample(node="n1", ts=100, up=1000.0, down=1000.0, lat=0.0, cpu=0.0, mem=0.0, temp=40.0, errors=0):
    return TelemetrySample(node, ts, up, down, lat, cpu, mem, 0.0, temp, errors)


def test_bandwidth_uses_the_bottleneck_direction_and_caps_at_one():
    assert compute_health(sample(up=20.0, down=500.0)).bandwidth == pytest.approx(0.02)
    assert compute_health(sample(up=300.0, down=300.0)).bandwidth == pytest.approx(0.3)
    assert compute_health(sample(up=5000.0, down=2000.0)).bandwidth == 1.0
    assert compute_health(sample(up=0.0, down=900.0)).bandwidth == 0.0


def test_latency_score_is_linear_and_floored_at_zero():
    assert compute_health(sample(lat=0.0)).latency == 1.0
    assert compute_health(sample(lat=10.0)).latency == pytest.approx(0.9)
    assert compute_health(sample(lat=50.0)).latency == pytest.approx(0.5)
    assert compute_health(sample(lat=100.0)).latency == 0.0
    assert compute_health(sample(lat=250.0)).latency == 0.0


def test_compute_score_is_the_free_share_of_cpu_and_memory():
    assert compute_health(sample(cpu=50.0, mem=50.0)).compute == pytest.approx(0.5)
    assert compute_health(sample(cpu=0.0, mem=0.0)).compute == 1.0
    assert compute_health(sample(cpu=100.0, mem=60.0)).compute == pytest.approx(0.2)


def test_reputation_score_follows_the_seed():
    assert compute_health(sample()).reputation == 0.5  # no finished task: neutral
    assert compute_health(sample(), Reputation(10, 0, 0)).reputation == 1.0
    assert compute_health(sample(), Reputation(10, 5, 0)).reputation == pytest.approx(10 / 15)
    assert compute_health(sample(), Reputation(10, 0, 2)).reputation == pytest.approx(0.9)
    assert compute_health(sample(), Reputation(10, 0, 100)).reputation == pytest.approx(0.7)  # penalty capped at 0.3
    assert compute_health(sample(), Reputation(1, 9, 6)).reputation == 0.0  # floored


def test_health_is_the_weighted_sum():
    h = compute_health(sample(up=500.0, down=800.0, lat=20.0, cpu=50.0, mem=50.0), Reputation(3, 1, 0))
    assert h.total == pytest.approx(0.4 * 0.5 + 0.3 * 0.8 + 0.2 * 0.5 + 0.1 * 0.75)


def test_healthy_means_strictly_above_one_half():
    assert not is_healthy(0.5)
    assert is_healthy(0.5000001)
    assert not is_healthy(0.2)


@given(
    st.floats(0, 1e5), st.floats(0, 1e5), st.floats(0, 1e4), st.floats(0, 100), st.floats(0, 100),
    st.integers(0, 50), st.integers(0, 50), st.integers(0, 50),
)
def test_every_component_and_the_total_stay_in_unit_interval(up, down, lat, cpu, mem, ok, bad, disputes):
    h = compute_health(sample(up=up, down=down, lat=lat, cpu=cpu, mem=mem), Reputation(ok, bad, disputes))
    for value in (h.bandwidth, h.latency, h.compute, h.reputation, h.total):
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize(
    "changes",
    [
        {"node_id": ""},
        {"timestamp": -1},
        {"timestamp": 1.5},
        {"bandwidth_up_mbps": -1.0},
        {"bandwidth_down_mbps": math.nan},
        {"latency_ms": math.inf},
        {"cpu_use_percent": 101.0},
        {"memory_use_percent": -0.1},
        {"gpu_use_percent": 100.5},
        {"temperature_c": -300.0},
        {"error_count": -1},
        {"error_count": True},
        {"latency_ms": "5"},
        {"bandwidth_up_mbps": 10**400},
    ],
)
def test_invalid_telemetry_sample_is_rejected(changes):
    fields = dict(node_id="n", timestamp=1, bandwidth_up_mbps=1.0, bandwidth_down_mbps=1.0, latency_ms=1.0, cpu_use_percent=1.0)
    fields.update(changes)
    with pytest.raises(InvalidTelemetry):
        TelemetrySample(**fields)


def test_huge_dispute_count_scores_without_overflow():
    assert compute_health(sample(), Reputation(10**30, 0, 10**400)).reputation == pytest.approx(0.7)


def test_invalid_reputation_is_rejected():
    with pytest.raises(InvalidTelemetry):
        Reputation(-1, 0, 0)


# --- safety policy and circuit breaker -------------------------------------------------


def test_safety_limits_are_strict_upper_bounds():
    policy = SafetyPolicy()
    assert compute_safety_violations(sample(temp=85.0, lat=100.0, errors=25), policy) == ()
    assert compute_safety_violations(sample(temp=85.1), policy) == ("temperature",)
    assert compute_safety_violations(sample(lat=100.5), policy) == ("latency",)
    assert compute_safety_violations(sample(errors=26), policy) == ("errors",)
    assert compute_safety_violations(sample(temp=90.0, lat=200.0, errors=30), policy) == ("temperature", "latency", "errors")


def test_breaker_trips_on_a_violation_and_recovers_on_a_later_good_sample():
    policy = SafetyPolicy()
    state = process_sample(None, sample(ts=1), policy)
    assert not state.tripped
    state = process_sample(state, sample(ts=2, temp=95.0), policy)
    assert state.tripped and state.reasons == ("temperature",) and state.tripped_at == 2
    state = process_sample(state, sample(ts=3, temp=96.0, errors=40), policy)
    assert state.tripped and state.tripped_at == 2 and state.reasons == ("temperature", "errors")
    state = process_sample(state, sample(ts=4), policy)
    assert not state.tripped and state.reasons == () and state.tripped_at is None


def test_breaker_with_recovery_samples_needs_consecutive_good_samples():
    policy = SafetyPolicy(recovery_samples=2)
    state = process_sample(None, sample(ts=1, lat=150.0), policy)
    state = process_sample(state, sample(ts=2), policy)
    assert state.tripped
    state = process_sample(state, sample(ts=3, lat=150.0), policy)  # streak broken
    state = process_sample(state, sample(ts=4), policy)
    assert state.tripped
    state = process_sample(state, sample(ts=5), policy)
    assert not state.tripped


def test_breaker_ignores_older_samples():
    policy = SafetyPolicy()
    state = process_sample(None, sample(ts=10, temp=99.0), policy)
    assert process_sample(state, sample(ts=9), policy) == state
    good = process_sample(state, sample(ts=11), policy)
    assert process_sample(good, sample(ts=5, temp=99.0), policy) == good


def test_invalid_breaker_input_is_rejected():
    with pytest.raises(InvalidTelemetry):
        process_sample(BreakerState("other"), sample(node="n1"), SafetyPolicy())
    with pytest.raises(InvalidTelemetry):
        SafetyPolicy(recovery_samples=0)
    with pytest.raises(InvalidTelemetry):
        SafetyPolicy(max_error_count=-1)
    with pytest.raises(InvalidTelemetry):
        SafetyPolicy(max_temperature_c=float("nan"))
    with pytest.raises(InvalidTelemetry):
        SafetyPolicy(max_latency_ms="100")
