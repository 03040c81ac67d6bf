"""Coordinate-wise median (Yin et al. 2018): robust while fewer than half the updates are bad.

With an even number of updates the median is the mean of the two middle values, as
`numpy.median`. Sample counts are ignored: weighting would let one client claim a huge
count and move the median on its own.
"""

from __future__ import annotations

import torch

from bcai.training.aggregation.base import AggregationRule
from bcai.training.aggregation.sorting import compute_sorted_stack


def compute_coordinate_median(params: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    n = len(params)
    out = {}
    for name in params[0]:
        ordered = compute_sorted_stack([p[name] for p in params])
        if n % 2 == 1:
            out[name] = ordered[n // 2].clone()
        else:
            out[name] = (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return out


class Median(AggregationRule):
    name = "median"

    def compute(self, params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
        return compute_coordinate_median(params)
