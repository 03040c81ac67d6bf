"""The aggregation-rule plugin base (Flower-style): a pure function over a list of updates.

A rule implements `compute(params, num_samples)` over checked torch tensors; `aggregate`
checks the updates and returns parameters in the caller's kind (torch or numpy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch

from bcai.errors import UnsupportedPrivacyComposition
from bcai.training.updates import Array, ModelUpdate, check_updates, compute_output, is_numpy_update


class AggregationRule(ABC):
    """Combines client updates into one set of parameters."""

    name: ClassVar[str]

    def aggregate(self, updates: Sequence[ModelUpdate]) -> dict[str, Array]:
        params = check_updates(updates)
        result = self.compute(params, [u.num_samples for u in updates])
        return compute_output(result, is_numpy_update(updates[0]))

    @abstractmethod
    def compute(self, params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
        """The aggregate of checked updates (same names, shapes, dtypes; finite)."""

    def compute_sensitivity(self, num_samples: list[int], clip_norm: float) -> float:
        """L2 sensitivity of the aggregate when each update has norm <= clip_norm.

        Rules without a useful bound (median, Krum: one client can move the output by an
        amount that depends on the other clients) cannot be made differentially private
        by output noise and raise.
        """
        raise UnsupportedPrivacyComposition(
            f"{self.name} has no L2 sensitivity bound; wrap FedAvg or FedProx with DifferentialPrivacy"
        )
