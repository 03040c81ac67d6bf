"""Latency-aware: the node with the lowest latency first."""

from __future__ import annotations

from bcai.scheduler.strategies.base import AssignmentStrategy, NodeView


class LatencyAwareStrategy(AssignmentStrategy):
    name = "latency-aware"

    def compute_order(self, candidates: list[NodeView], last_selected: str | None) -> list[NodeView]:
        return sorted(candidates, key=lambda c: (c.sample.latency_ms, c.node_id))
