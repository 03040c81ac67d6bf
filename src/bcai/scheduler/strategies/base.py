"""The assignment-strategy plugin base: order admitted candidates, take the first `count`.

Every strategy breaks ties by node id (ascending), so the same candidates always give
the same choice whatever order they arrive in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from bcai.errors import InvalidJobPolicy, InvalidNodeRecord
from bcai.scheduler.telemetry import HealthScore, TelemetrySample


@dataclass(frozen=True)
class NodeView:
    """What a strategy sees of an admitted node: its latest sample and health score."""

    node_id: str
    sample: TelemetrySample
    health: HealthScore


class AssignmentStrategy(ABC):
    """Orders candidates; `select` takes the first `count` of that order."""

    name: ClassVar[str]

    def select(
        self, candidates: Sequence[NodeView], count: int, *, last_selected: str | None = None
    ) -> tuple[str, ...]:
        """The ids of up to `count` chosen nodes, best first.

        `last_selected` is the node the previous assignment ended on; only round-robin
        uses it (the caller keeps it, so the strategy itself stays stateless).
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidJobPolicy(f"count must be a non-negative integer, got {count!r}")
        if last_selected is not None and not isinstance(last_selected, str):
            raise InvalidJobPolicy(f"last_selected must be a node id or None, got {last_selected!r}")
        ids = [c.node_id for c in candidates]
        if len(set(ids)) != len(ids):
            raise InvalidNodeRecord("candidates hold the same node id twice")
        ordered = self.compute_order(sorted(candidates, key=lambda c: c.node_id), last_selected)
        return tuple(c.node_id for c in ordered[:count])

    @abstractmethod
    def compute_order(self, candidates: list[NodeView], last_selected: str | None) -> list[NodeView]:
        """All candidates, best first; `candidates` arrives sorted by node id."""
