"""Coordinate-wise trimmed mean (Yin et al. 2018): drop the k = floor(beta * n) largest and
k smallest values of every coordinate, average the rest. Sample counts are ignored, as
for the median.
"""

from __future__ import annotations

import math

import torch

from bcai.errors import InvalidAggregationParameter
from bcai.training.aggregation.base import AggregationRule
from bcai.training.aggregation.sorting import compute_sorted_stack


class TrimmedMean(AggregationRule):
    name = "trimmed-mean"

    def __init__(self, beta: float = 0.1) -> None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or not 0 <= beta < 0.5:
            raise InvalidAggregationParameter(f"beta must be in [0, 0.5), got {beta!r}")
        self.beta = float(beta)

    def compute_trim(self, n: int) -> int:
        return math.floor(self.beta * n)

    def compute(self, params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
        n = len(params)
        k = self.compute_trim(n)
        out = {}
        for name in params[0]:
            tensors = [p[name] for p in params]
            if k == 0:
                out[name] = torch.stack(tensors).mean(dim=0)
            else:
                out[name] = compute_sorted_stack(tensors)[k : n - k].mean(dim=0)
        return out
