"""Krum and multi-Krum (Blanchard et al. 2017), tolerating f Byzantine updates.

Each update's score is the sum of squared L2 distances to its n - f - 2 nearest other
updates; Krum returns the update with the lowest score (ties: lowest index). Multi-Krum
keeps the m best-scored updates and averages them weighted by sample count (as Flower's
`aggregate_krum`). Needs n > 2f + 2.
"""

from __future__ import annotations

import torch

from bcai.errors import InvalidAggregationParameter
from bcai.training.aggregation.base import AggregationRule
from bcai.training.aggregation.fedavg import compute_weighted_average


def compute_pairwise_sq_distances(params: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """n x n squared L2 distances over all parameters (float64).

    One `torch.dist` per pair and parameter: no stacked copy of the updates, and its
    cascaded reduction was measured ~20x more accurate than `torch.cdist` (whose float32
    accumulation was off by 1.6% on 10M coordinates).
    """
    n = len(params)
    dist = torch.zeros((n, n), dtype=torch.float64)
    for i in range(n):
        for j in range(i + 1, n):
            total = sum(float(torch.dist(params[i][name], params[j][name])) ** 2 for name in params[i])
            dist[i, j] = dist[j, i] = total
    return dist


def compute_krum_scores(params: list[dict[str, torch.Tensor]], f: int) -> list[float]:
    n = len(params)
    dist = compute_pairwise_sq_distances(params)
    neighbours = n - f - 2
    scores = []
    for i in range(n):
        others = torch.cat([dist[i, :i], dist[i, i + 1 :]])
        scores.append(float(torch.sort(others).values[:neighbours].sum()))
    return scores


class Krum(AggregationRule):
    """`Krum(f)` returns one update; `Krum(f, m)` is multi-Krum over the m best."""

    name = "krum"

    def __init__(self, f: int, m: int = 1) -> None:
        if isinstance(f, bool) or not isinstance(f, int) or f < 0:
            raise InvalidAggregationParameter(f"f must be a non-negative integer, got {f!r}")
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise InvalidAggregationParameter(f"m must be a positive integer, got {m!r}")
        self.f = f
        self.m = m

    def compute_selection(self, params: list[dict[str, torch.Tensor]]) -> tuple[int, ...]:
        """Indices of the m best-scored updates, best first."""
        n = len(params)
        if n <= 2 * self.f + 2:
            raise InvalidAggregationParameter(f"Krum with f={self.f} needs more than {2 * self.f + 2} updates, got {n}")
        if self.m > n - self.f:
            raise InvalidAggregationParameter(f"multi-Krum m={self.m} exceeds n - f = {n - self.f}")
        scores = compute_krum_scores(params, self.f)
        return tuple(sorted(range(n), key=lambda i: (scores[i], i))[: self.m])

    def compute(self, params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
        chosen = self.compute_selection(params)
        if len(chosen) == 1:
            return {name: t.clone() for name, t in params[chosen[0]].items()}
        return compute_weighted_average([params[i] for i in chosen], [num_samples[i] for i in chosen])
