"""Round-robin: rotate through candidates in node-id order.

The order starts at the first node id after `last_selected` and wraps around. Keying the
rotation on the last id (not on a position) keeps it fair when nodes join or leave
between assignments: nobody is skipped or served twice because the list shifted.
"""

from __future__ import annotations

from bcai.scheduler.strategies.base import AssignmentStrategy, NodeView


class RoundRobinStrategy(AssignmentStrategy):
    name = "round-robin"

    def compute_order(self, candidates: list[NodeView], last_selected: str | None) -> list[NodeView]:
        if last_selected is None:
            return list(candidates)
        start = next((i for i, c in enumerate(candidates) if c.node_id > last_selected), 0)
        return candidates[start:] + candidates[:start]
