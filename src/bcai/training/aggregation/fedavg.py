"""FedAvg: the average of the updates weighted by their sample counts (McMahan et al. 2017)."""

from __future__ import annotations

import torch

from bcai.training.aggregation.base import AggregationRule


def compute_weighted_average(params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
    total = sum(num_samples)
    out = {}
    for name, first in params[0].items():
        acc = first * (num_samples[0] / total)
        for update, count in zip(params[1:], num_samples[1:]):
            acc.add_(update[name], alpha=count / total)
        out[name] = acc
    return out


class FedAvg(AggregationRule):
    name = "fedavg"

    def compute(self, params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
        return compute_weighted_average(params, num_samples)

    def compute_sensitivity(self, num_samples: list[int], clip_norm: float) -> float:
        # Replacing one client's update (norm <= S) by another moves the weighted mean by
        # at most w_i * 2S; sample counts are public, so the worst client sets the bound.
        total = sum(num_samples)
        return 2.0 * clip_norm * max(num_samples) / total
