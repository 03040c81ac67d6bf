import pytest

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord
from bcai.scheduler import (
    JobPolicy,
    NodeCapabilities,
    NodeRecord,
    compute_admission_rejections,
    compute_max_concurrent_tasks,
    is_admissible,
)

CAPS = NodeCapabilities(cpu_cores=8, memory_mib=16384, bandwidth_mbps=500, gpu_count=2, gpu_memory_mib=24576)
NOW = 10_000


def node(**changes):
    fields = dict(node_id="n1", capabilities=CAPS, node_type="compute", last_heartbeat=NOW - 10, deleted=False)
    fields.update(changes)
    return NodeRecord(**fields)


def reasons(n, policy=JobPolicy(), active=0, cap=50, now=NOW):
    return compute_admission_rejections(n, policy, now=now, active_tasks=active, max_tasks=cap)


def test_a_fitting_node_is_admitted():
    assert reasons(node()) == ()
    assert is_admissible(node(), JobPolicy(), now=NOW, active_tasks=0, max_tasks=50)


def test_heartbeat_within_90_seconds_is_online_inclusive():
    assert reasons(node(last_heartbeat=NOW - 90)) == ()
    assert reasons(node(last_heartbeat=NOW - 91)) == ("offline",)
    assert reasons(node(last_heartbeat=None)) == ("offline",)


def test_soft_deleted_node_is_rejected():
    assert reasons(node(deleted=True)) == ("deleted",)


def test_capabilities_must_satisfy_the_policy():
    assert reasons(node(), JobPolicy(min_cpu_cores=8, min_memory_mib=16384, min_bandwidth_mbps=500)) == ()
    assert reasons(node(), JobPolicy(min_cpu_cores=9)) == ("insufficient_cpu",)
    assert reasons(node(), JobPolicy(min_memory_mib=16385)) == ("insufficient_memory",)
    assert reasons(node(), JobPolicy(min_bandwidth_mbps=501)) == ("insufficient_bandwidth",)


def test_gpu_needs_are_checked_only_when_asked():
    no_gpu = node(capabilities=NodeCapabilities(8, 16384, 500))
    assert reasons(no_gpu, JobPolicy(min_gpu_memory_mib=1)) == ()  # no GPU asked: per-GPU memory ignored
    assert reasons(no_gpu, JobPolicy(min_gpu_count=1)) == ("insufficient_gpu",)
    assert reasons(node(), JobPolicy(min_gpu_count=2, min_gpu_memory_mib=24576)) == ()
    assert reasons(node(), JobPolicy(min_gpu_count=3)) == ("insufficient_gpu",)
    assert reasons(node(), JobPolicy(min_gpu_count=1, min_gpu_memory_mib=40000)) == ("insufficient_gpu_memory",)


def test_node_type_must_match_or_be_any():
    assert reasons(node(node_type="compute"), JobPolicy(preferred_node_type="compute")) == ()
    assert reasons(node(node_type="any"), JobPolicy(preferred_node_type="compute")) == ()
    assert reasons(node(node_type="gateway"), JobPolicy(preferred_node_type="compute")) == ("node_type_mismatch",)
    # The seed's rule, literally: a job preferring "any" takes only universal nodes.
    assert reasons(node(node_type="gateway"), JobPolicy(preferred_node_type="any")) == ("node_type_mismatch",)
    assert reasons(node(node_type="any"), JobPolicy(preferred_node_type="any")) == ()


def test_node_at_its_cap_is_rejected():
    assert reasons(node(), active=49, cap=50) == ()
    assert reasons(node(), active=50, cap=50) == ("at_capacity",)
    assert reasons(node(), active=1, cap=1) == ("at_capacity",)


def test_every_failed_rule_is_reported():
    bad = node(last_heartbeat=0, deleted=True, node_type="edge")
    assert reasons(bad, JobPolicy(min_cpu_cores=64), active=50) == (
        "offline", "deleted", "insufficient_cpu", "node_type_mismatch", "at_capacity",
    )


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "7"}, 7),
        ({"MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "9"}, 9),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "7", "MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "9"}, 7),
        # The preferred key wins whenever it is set, even when invalid (seed semantics).
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "abc", "MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "9"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "0", "MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "9"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "", "MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "9"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "0"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "-3"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "1.5"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": " 5"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "1_0"}, 50),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "٣"}, 50),  # non-ASCII digit
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "+4"}, 4),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": "1"}, 1),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": str(2**63 - 1)}, 2**63 - 1),
        ({"MAX_CONCURRENT_TASKS_PER_NODE": str(2**63)}, 50),  # beyond signed 64-bit
        ({"MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "-1"}, 50),
        ({"MAX_ACTIVE_TASK_ATTACHMENTS_PER_NODE": "x"}, 50),
        ({"OTHER": "3"}, 50),
    ],
)
def test_max_concurrent_tasks_resolution(env, expected):
    assert compute_max_concurrent_tasks(env) == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: NodeCapabilities(-1, 1, 1),
        lambda: NodeCapabilities(1, 1.5, 1),
        lambda: NodeCapabilities(True, 1, 1),
        lambda: NodeRecord("", CAPS),
        lambda: NodeRecord("n", CAPS, node_type=""),
        lambda: NodeRecord("n", CAPS, last_heartbeat=-5),
        lambda: NodeRecord("n", CAPS, deleted="no"),
        lambda: NodeRecord("n", "caps"),
    ],
)
def test_invalid_node_record_is_rejected(make):
    with pytest.raises(InvalidNodeRecord):
        make()


@pytest.mark.parametrize(
    "changes",
    [
        {"min_nodes": 0},
        {"min_nodes": -1},
        {"min_nodes": 1.0},
        {"min_cpu_cores": -1},
        {"min_gpu_count": 0.5},
        {"preferred_node_type": ""},
        {"min_health": 1.5},
        {"min_health": "0.5"},
    ],
)
def test_invalid_job_policy_is_rejected(changes):
    with pytest.raises(InvalidJobPolicy):
        JobPolicy(**changes)


def test_invalid_admission_arguments_are_rejected():
    with pytest.raises(InvalidJobPolicy):
        reasons(node(), now=-1)
    with pytest.raises(InvalidJobPolicy):
        reasons(node(), cap=0)
    with pytest.raises(InvalidNodeRecord):
        reasons(node(), active=-1)
