"""Assignment strategies: a small base class, one file per strategy.

- `base.py`: `AssignmentStrategy` (the plugin base) and `NodeView` (what it sees).
- `weighted.py`: highest health first.
- `round_robin.py`: rotate in node-id order after the last selected node.
- `least_loaded.py`: lowest CPU use first.
- `latency_aware.py`: lowest latency first.

`get_strategy(name)` returns a shipped strategy by its name.
"""

from __future__ import annotations

from bcai.errors import UnknownStrategy
from bcai.scheduler.strategies.base import AssignmentStrategy, NodeView
from bcai.scheduler.strategies.latency_aware import LatencyAwareStrategy
from bcai.scheduler.strategies.least_loaded import LeastLoadedStrategy
from bcai.scheduler.strategies.round_robin import RoundRobinStrategy
from bcai.scheduler.strategies.weighted import WeightedStrategy

STRATEGIES: dict[str, type[AssignmentStrategy]] = {
    cls.name: cls for cls in (WeightedStrategy, RoundRobinStrategy, LeastLoadedStrategy, LatencyAwareStrategy)
}


def get_strategy(name: str) -> AssignmentStrategy:
    """A fresh instance of the strategy called `name` (see `STRATEGIES`)."""
    try:
        return STRATEGIES[name]()
    except (KeyError, TypeError):
        raise UnknownStrategy(f"unknown assignment strategy {name!r}; known: {sorted(STRATEGIES)}") from None


__all__ = [
    "STRATEGIES",
    "AssignmentStrategy",
    "LatencyAwareStrategy",
    "LeastLoadedStrategy",
    "NodeView",
    "RoundRobinStrategy",
    "WeightedStrategy",
    "get_strategy",
]
