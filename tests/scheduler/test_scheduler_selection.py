import pytest

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord, UnknownStrategy
from bcai.scheduler import (
    STRATEGIES,
    BreakerState,
    Candidate,
    JobPolicy,
    LatencyAwareStrategy,
    LeastLoadedStrategy,
    NodeCapabilities,
    NodeRecord,
    NodeView,
    Reputation,
    RoundRobinStrategy,
    TelemetrySample,
    WeightedStrategy,
    compute_health,
    get_strategy,
    select_nodes,
)

NOW = 1_000
CAPS = NodeCapabilities(4, 8192, 100)


def sample(node, up=500.0, lat=10.0, cpu=20.0, temp=40.0, errors=0):
    return TelemetrySample(node, NOW, up, up, lat, cpu, 20.0, 0.0, temp, errors)


def view(node, **kw):
    s = sample(node, **kw)
    return NodeView(node, s, compute_health(s))


def candidate(node, *, heartbeat=NOW, node_type="any", **kw):
    rest = {k: kw.pop(k) for k in ("reputation", "breaker", "active_tasks", "assigned_to_job") if k in kw}
    return Candidate(NodeRecord(node, CAPS, node_type, heartbeat), sample(node, **kw), **rest)


# --- strategies --------------------------------------------------------------------------


def test_weighted_picks_highest_health_ties_by_node_id():
    views = [view("c", up=100.0), view("b", up=900.0), view("a", up=900.0)]
    assert WeightedStrategy().select(views, 3) == ("a", "b", "c")
    assert WeightedStrategy().select(views, 1) == ("a",)


def test_least_loaded_picks_lowest_cpu():
    views = [view("a", cpu=80.0), view("b", cpu=10.0), view("c", cpu=10.0)]
    assert LeastLoadedStrategy().select(views, 3) == ("b", "c", "a")


def test_latency_aware_picks_lowest_latency():
    views = [view("a", lat=50.0), view("b", lat=5.0), view("c", lat=20.0)]
    assert LatencyAwareStrategy().select(views, 2) == ("b", "c")


def test_round_robin_rotates_after_the_last_selected_node():
    views = [view("c"), view("a"), view("b")]
    rr = RoundRobinStrategy()
    assert rr.select(views, 2) == ("a", "b")
    assert rr.select(views, 2, last_selected="b") == ("c", "a")
    assert rr.select(views, 1, last_selected="c") == ("a",)
    # The last node left the pool: continue with the next id after it.
    assert rr.select([view("a"), view("c")], 1, last_selected="b") == ("c",)


def test_strategies_do_not_depend_on_input_order():
    views = [view(f"n{i}", up=100.0 * (i % 3), lat=float(i % 4), cpu=float(i % 5)) for i in range(12)]
    for cls in STRATEGIES.values():
        assert cls().select(views, 5) == cls().select(list(reversed(views)), 5)


def test_get_strategy_by_name_and_unknown_name():
    assert isinstance(get_strategy("weighted"), WeightedStrategy)
    assert set(STRATEGIES) == {"weighted", "round-robin", "least-loaded", "latency-aware"}
    with pytest.raises(UnknownStrategy):
        get_strategy("random")


def test_invalid_strategy_input_is_rejected():
    with pytest.raises(InvalidJobPolicy):
        WeightedStrategy().select([view("a")], -1)
    with pytest.raises(InvalidNodeRecord):
        WeightedStrategy().select([view("a"), view("a")], 1)
    with pytest.raises(InvalidJobPolicy):
        RoundRobinStrategy().select([view("a")], 1, last_selected=3)


# --- select_nodes ---------------------------------------------------------------------


def test_select_nodes_takes_only_what_the_job_still_needs():
    cands = [candidate(n) for n in "abcd"]
    sel = select_nodes(cands, JobPolicy(min_nodes=3, preferred_node_type="compute"), WeightedStrategy(), now=NOW, max_tasks=50)
    assert sel.chosen == ("a", "b", "c") and sel.needed == 3
    sel = select_nodes(cands, JobPolicy(min_nodes=3), WeightedStrategy(), now=NOW, max_tasks=50, already_active=2)
    assert sel.chosen == ("a",)
    sel = select_nodes(cands, JobPolicy(min_nodes=3), WeightedStrategy(), now=NOW, max_tasks=50, already_active=5)
    assert sel.chosen == () and sel.needed == 0


def test_select_nodes_reports_why_each_node_was_left_out():
    cands = [
        candidate("ok"),
        candidate("stale", heartbeat=NOW - 91),
        candidate("hot", temp=90.0),
        candidate("slow", lat=150.0),
        candidate("busy", active_tasks=2),
        candidate("dup", assigned_to_job=True),
        candidate("typed", node_type="gateway"),
        candidate("weak", up=0.0, lat=90.0, cpu=100.0, reputation=Reputation(0, 5, 0)),
        candidate("broken", breaker=BreakerState("broken", tripped=True, reasons=("errors",), tripped_at=1)),
        Candidate(NodeRecord("silent", CAPS, "any", NOW), None),
    ]
    sel = select_nodes(cands, JobPolicy(min_nodes=5), WeightedStrategy(), now=NOW, max_tasks=2)
    assert sel.chosen == ("ok",)
    assert sel.rejected == {
        "stale": ("offline",),
        "hot": ("circuit_open",),
        "slow": ("circuit_open", "unhealthy"),
        "busy": ("at_capacity",),
        "dup": ("already_assigned",),
        "typed": ("node_type_mismatch",),
        "weak": ("unhealthy",),
        "broken": ("circuit_open",),
        "silent": ("no_telemetry",),
    }


def test_a_closed_breaker_state_overrides_the_raw_sample_check():
    # The breaker recovered (closed) on a newer sample than the one given: trust the breaker.
    cands = [candidate("a", temp=90.0, breaker=BreakerState("a", tripped=False))]
    assert select_nodes(cands, JobPolicy(), WeightedStrategy(), now=NOW, max_tasks=50).chosen == ("a",)


def test_invalid_select_nodes_input_is_rejected():
    with pytest.raises(InvalidNodeRecord):
        select_nodes([candidate("a"), candidate("a")], JobPolicy(), WeightedStrategy(), now=NOW, max_tasks=5)
    with pytest.raises(InvalidJobPolicy):
        select_nodes([candidate("a")], JobPolicy(), WeightedStrategy(), now=NOW, max_tasks=5, already_active=-1)
    with pytest.raises(InvalidNodeRecord):
        Candidate(NodeRecord("a", CAPS), sample("b"))
    with pytest.raises(InvalidNodeRecord):
        Candidate(NodeRecord("a", CAPS), sample("a"), breaker=BreakerState("b"))
