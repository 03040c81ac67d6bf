"""On-chain assignment vectors (STYLE 3): another implementation can check itself against these."""

import json
from pathlib import Path

import pytest

from bcai.scheduler import JobPolicy, NodeCapabilities, OnchainTelemetry, Reputation, Volunteer, compute_assignment, compute_health_ppm

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "scheduler_assignment.json").read_text())["cases"]


@pytest.mark.parametrize("case", VECTORS, ids=[f"{c['name']}-{c['input']['seed_hex'][:4]}" for c in VECTORS])
def test_assignment_vector(case):
    volunteers = [
        Volunteer(
            v["node_id"], NodeCapabilities(*v["capabilities"]), OnchainTelemetry(*v["telemetry"]),
            Reputation(*v["reputation"]), v["node_type"], v["active_tasks"], v["deleted"],
        )
        for v in case["pre"]["volunteers"]
    ]
    assert {v.node_id: compute_health_ppm(v.telemetry, v.reputation) for v in volunteers} == case["pre"]["health_ppm"]
    given = case["input"]
    policy = JobPolicy(min_nodes=given["min_nodes"], preferred_node_type=given["preferred_node_type"])
    out = compute_assignment(
        volunteers, policy, bytes.fromhex(given["seed_hex"]),
        already_assigned=given["already_assigned"], max_tasks=given["max_tasks"],
    )
    assert list(out) == case["post"]["assignment"]
