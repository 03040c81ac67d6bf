"""Least-loaded: the node with the lowest CPU use first."""

from __future__ import annotations

from bcai.scheduler.strategies.base import AssignmentStrategy, NodeView


class LeastLoadedStrategy(AssignmentStrategy):
    name = "least-loaded"

    def compute_order(self, candidates: list[NodeView], last_selected: str | None) -> list[NodeView]:
        return sorted(candidates, key=lambda c: (c.sample.cpu_use_percent, c.node_id))
