"""Weighted: the healthiest node first (seed 003's default strategy)."""

from __future__ import annotations

from bcai.scheduler.strategies.base import AssignmentStrategy, NodeView


class WeightedStrategy(AssignmentStrategy):
    name = "weighted"

    def compute_order(self, candidates: list[NodeView], last_selected: str | None) -> list[NodeView]:
        return sorted(candidates, key=lambda c: (-c.health.total, c.node_id))
