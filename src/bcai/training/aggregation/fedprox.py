"""FedProx (Li et al. 2020): FedAvg on the server, a proximal term in each client's loss.

The client minimises `loss + mu/2 * ||w - w_global||^2`, which keeps local models near
the global one when clients' data differ. `compute_proximal_term` is that term, as a
differentiable torch scalar to add to the client loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from bcai.errors import InvalidAggregationParameter, InvalidUpdate
from bcai.training.aggregation.fedavg import FedAvg


def _check_mu(mu: float) -> None:
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not math.isfinite(mu) or mu < 0:
        raise InvalidAggregationParameter(f"mu must be a finite number >= 0, got {mu!r}")


def compute_proximal_term(
    local: Mapping[str, torch.Tensor], global_params: Mapping[str, torch.Tensor], mu: float
) -> torch.Tensor:
    """`mu / 2 * sum ||local - global||^2` over parameters; gradients flow into `local` only.

    >>> w = {"w": torch.tensor([1.0, 2.0], requires_grad=True)}
    >>> float(compute_proximal_term(w, {"w": torch.zeros(2)}, mu=0.1))  # 0.05 * 5
    0.25
    """
    _check_mu(mu)
    if set(local) != set(global_params):
        raise InvalidUpdate(f"local parameters {sorted(local)} differ from global {sorted(global_params)}")
    squares = []
    for name, value in local.items():
        reference = global_params[name]
        if value.shape != reference.shape:
            raise InvalidUpdate(f"parameter {name!r}: local {tuple(value.shape)} vs global {tuple(reference.shape)}")
        squares.append((value - reference.detach()).pow(2).sum())
    return (mu / 2.0) * torch.stack(squares).sum()


class FedProx(FedAvg):
    """The server side of FedProx is FedAvg; `mu` travels to clients with the round config."""

    name = "fedprox"

    def __init__(self, mu: float = 0.01) -> None:
        _check_mu(mu)
        self.mu = float(mu)
