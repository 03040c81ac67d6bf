from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord
from bcai.scheduler import (
    JobPolicy,
    NodeCapabilities,
    OnchainTelemetry,
    Reputation,
    TelemetrySample,
    Volunteer,
    compute_assignment,
    compute_health,
    compute_health_ppm,
    compute_onchain_telemetry,
)

CAPS = NodeCapabilities(4, 8192, 100)
GOOD = OnchainTelemetry(500_000, 500_000, 10_000, 200, 200, 40_000, 0)


def vol(node, telemetry=GOOD, **kw):
    return Volunteer(node, kw.pop("caps", CAPS), telemetry, **kw)


def test_health_ppm_matches_the_float_formula_on_an_example():
    t = OnchainTelemetry(500_000, 800_000, 20_000, 500, 500)
    # 0.4*0.5 + 0.3*0.8 + 0.2*0.5 + 0.1*0.75
    assert compute_health_ppm(t, Reputation(3, 1, 0)) == 615_000


@given(
    st.integers(0, 2_000_000), st.integers(0, 2_000_000), st.integers(0, 200_000),
    st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 30), st.integers(0, 30), st.integers(0, 10),
)
def test_health_ppm_agrees_with_float_health_within_one_ppm(up, down, lat, cpu, mem, ok, bad, disputes):
    rep = Reputation(ok, bad, disputes)
    sample = TelemetrySample("n", 0, up / 1000, down / 1000, lat / 1000, cpu / 10, mem / 10)
    assert abs(compute_health_ppm(OnchainTelemetry(up, down, lat, cpu, mem), rep) - compute_health(sample, rep).total * 1e6) <= 1.5


def test_compute_onchain_telemetry_converts_units():
    s = TelemetrySample("n", 5, 12.5, 30.0, 7.25, 55.5, 10.0, 0.0, 61.2, 3)
    assert compute_onchain_telemetry(s) == OnchainTelemetry(12_500, 30_000, 7_250, 555, 100, 61_200, 3)


def test_assignment_is_deterministic_and_independent_of_input_order():
    vols = [vol(f"n{i}", OnchainTelemetry(100_000 * i, 900_000, 1000 * i, 100, 100)) for i in range(1, 9)]
    policy = JobPolicy(min_nodes=3)
    first = compute_assignment(vols, policy, b"block-hash-1")
    assert len(first) == 3 and len(set(first)) == 3
    assert compute_assignment(list(reversed(vols)), policy, b"block-hash-1") == first
    seeds = {compute_assignment(vols, policy, bytes([i])) for i in range(20)}
    assert len(seeds) > 1  # the seed matters


def test_assignment_vector_is_pinned():
    # A fixed vector: another implementation must reproduce it bit for bit.
    vols = [vol(f"node-{c}", OnchainTelemetry(100_000 * (i + 1), 1_000_000, 5_000, 300, 300)) for i, c in enumerate("abcdef")]
    assert [compute_health_ppm(v.telemetry, v.reputation) for v in vols] == [515000, 555000, 595000, 635000, 675000, 715000]
    assert compute_assignment(vols, JobPolicy(min_nodes=4), b"\x00" * 32) == ("node-d", "node-e", "node-f", "node-a")


def test_ineligible_volunteers_are_never_chosen():
    vols = [
        vol("ok"),
        vol("deleted", deleted=True),
        vol("busy", active_tasks=50),
        vol("typed", node_type="gateway"),
        vol("small", caps=NodeCapabilities(1, 8192, 100)),
        vol("hot", OnchainTelemetry(500_000, 500_000, 10_000, 200, 200, 85_001, 0)),
        vol("laggy", OnchainTelemetry(1_000_000, 1_000_000, 100_001, 0, 0)),
        vol("flaky", OnchainTelemetry(500_000, 500_000, 10_000, 200, 200, 40_000, 26)),
        vol("weak", OnchainTelemetry(0, 0, 90_000, 1000, 1000)),
        vol("taken"),
    ]
    policy = JobPolicy(min_nodes=10, min_cpu_cores=2)
    for seed in (b"a", b"b", b"c"):
        assert compute_assignment(vols, policy, seed, already_assigned=["taken"]) == ("ok",)


def test_never_assigns_more_than_min_nodes_minus_already_assigned():
    vols = [vol(f"n{i}") for i in range(10)]
    assert len(compute_assignment(vols, JobPolicy(min_nodes=4), b"s")) == 4
    assert len(compute_assignment(vols, JobPolicy(min_nodes=4), b"s", already_assigned=["x", "y", "z"])) == 1
    assert compute_assignment(vols, JobPolicy(min_nodes=2), b"s", already_assigned=["x", "y", "z"]) == ()


def test_lottery_favours_healthier_volunteers():
    strong = vol("strong", OnchainTelemetry(1_000_000, 1_000_000, 0, 0, 0))  # 950_000 ppm
    fair = vol("fair", OnchainTelemetry(500_000, 500_000, 20_000, 500, 500))  # 590_000 ppm
    wins = Counter(compute_assignment([strong, fair], JobPolicy(min_nodes=1), i.to_bytes(4, "big"))[0] for i in range(2000))
    share = wins["strong"] / 2000
    assert abs(share - 950 / 1540) < 0.04


def test_invalid_onchain_input_is_rejected():
    with pytest.raises(InvalidJobPolicy):
        compute_assignment([vol("a")], JobPolicy(), b"")
    with pytest.raises(InvalidJobPolicy):
        compute_assignment([vol("a")], JobPolicy(), "seed")
    with pytest.raises(InvalidJobPolicy):
        compute_assignment([vol("a")], JobPolicy(), b"s", max_tasks=0)
    with pytest.raises(InvalidNodeRecord):
        compute_assignment([vol("a"), vol("a")], JobPolicy(), b"s")
    with pytest.raises(InvalidNodeRecord):
        OnchainTelemetry(1, 1, 1, 1001)
    with pytest.raises(InvalidNodeRecord):
        OnchainTelemetry(-1, 1, 1, 1)
    with pytest.raises(InvalidNodeRecord):
        OnchainTelemetry(1, 1, 1, 1, temperature_milli_c=1.5)
    with pytest.raises(InvalidNodeRecord):
        Volunteer("", CAPS, GOOD)
    with pytest.raises(InvalidNodeRecord):
        Volunteer("a", CAPS, GOOD, active_tasks=-1)
    with pytest.raises(InvalidNodeRecord):
        Volunteer("a", "caps", GOOD)
    with pytest.raises(InvalidNodeRecord):
        Volunteer("a", CAPS, (1, 2, 3))
    with pytest.raises(InvalidNodeRecord):
        Volunteer("a", CAPS, GOOD, reputation=0.5)
    with pytest.raises(InvalidNodeRecord):
        Volunteer("a", CAPS, GOOD, deleted=1)
