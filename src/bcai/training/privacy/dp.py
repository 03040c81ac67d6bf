"""Differential privacy as a wrapper rule: clip every update, aggregate, add Gaussian noise.

`DifferentialPrivacy(inner, clip_norm=S, epsilon=eps, delta=d, seed=...)`:

1. each update is scaled down to L2 norm <= S (over all its parameters together);
2. the inner rule aggregates the clipped updates;
3. i.i.d. Gaussian noise N(0, sigma^2) is added to every output coordinate.

Accounting: one aggregation is (eps, delta)-DP with respect to replacing one client's
update, with sigma from the *analytic Gaussian mechanism* (Balle & Wang, ICML 2018):
the smallest sigma with Phi(D/(2s) - eps*s/D) - e^eps * Phi(-D/(2s) - eps*s/D) <= delta,
found by bisection, where D is the inner rule's L2 sensitivity
(`inner.compute_sensitivity`; FedAvg: 2 * S * max_i n_i / sum n). It is exact for every
eps, unlike the classic sigma = sqrt(2 ln(1.25/delta)) * D / eps (Dwork & Roth, Thm
A.1), which is proven only for eps < 1 and over-noises there; `compute_classic_sigma`
is kept for comparison. Rounds compose: T rounds cost at most (T*eps, T*delta) by basic
composition; no tighter accountant (RDP, moments) is applied here.

Presets (SPEC E): `EPSILON_PRESETS = {"high": 0.1, "medium": 1.0, "low": 10.0}` (the
privacy level each gives). Noise comes from a `torch.Generator` seeded by the caller;
the same seed gives the same noise, and each call advances the generator, so two rounds
never reuse noise.
"""

from __future__ import annotations

import math

import torch

from bcai.errors import InvalidAggregationParameter
from bcai.training.aggregation.base import AggregationRule
from bcai.training.updates import compute_flat

EPSILON_PRESETS: dict[str, float] = {"high": 0.1, "medium": 1.0, "low": 10.0}
DEFAULT_DELTA = 1e-5


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidAggregationParameter(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_privacy(epsilon: float, delta: float, sensitivity: float) -> None:
    _check_positive("epsilon", epsilon)
    _check_positive("sensitivity", sensitivity)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta < 1:
        raise InvalidAggregationParameter(f"delta must be in (0, 1), got {delta!r}")


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _analytic_delta(sigma: float, epsilon: float, sensitivity: float) -> float:
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    # e^eps * Phi(-a - b) computed in log space to stay finite for large eps.
    second = _phi(-a - b)
    tail = math.exp(epsilon + math.log(second)) if second > 0 else 0.0
    return _phi(a - b) - tail


def compute_gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Noise scale of the analytic Gaussian mechanism (Balle & Wang 2018), to 1e-9 relative."""
    _check_privacy(epsilon, delta, sensitivity)
    low, high = 0.0, sensitivity
    while _analytic_delta(high, epsilon, sensitivity) > delta:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if mid <= 0 or _analytic_delta(mid, epsilon, sensitivity) > delta:
            low = mid
        else:
            high = mid
        if high - low <= 1e-9 * high:
            break
    return high


def compute_classic_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """sqrt(2 ln(1.25/delta)) * sensitivity / epsilon; proven only for epsilon < 1."""
    _check_privacy(epsilon, delta, sensitivity)
    if epsilon >= 1:
        raise InvalidAggregationParameter("the classic Gaussian bound holds only for epsilon < 1; use compute_gaussian_sigma")
    return math.sqrt(2.0 * math.log(1.25 / delta)) * sensitivity / epsilon


def compute_clipped(params: dict[str, torch.Tensor], clip_norm: float) -> dict[str, torch.Tensor]:
    """The update scaled to L2 norm <= clip_norm (unchanged when already within)."""
    norm = float(compute_flat(params).norm())
    if norm <= clip_norm:
        return params
    scale = clip_norm / norm
    return {name: t * scale for name, t in params.items()}


class DifferentialPrivacy(AggregationRule):
    """Wraps any rule with a sensitivity bound (FedAvg, FedProx) to make it (eps, delta)-DP."""

    name = "dp"

    def __init__(
        self,
        inner: AggregationRule,
        *,
        clip_norm: float,
        epsilon: float,
        seed: int,
        delta: float = DEFAULT_DELTA,
    ) -> None:
        if not isinstance(inner, AggregationRule):
            raise InvalidAggregationParameter("inner must be an AggregationRule")
        self.clip_norm = _check_positive("clip_norm", clip_norm)
        _check_privacy(epsilon, delta, 1.0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidAggregationParameter(f"seed must be an integer, got {seed!r}")
        self.inner = inner
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self._generator = torch.Generator().manual_seed(seed)

    @classmethod
    def from_preset(cls, inner: AggregationRule, preset: str, *, clip_norm: float, seed: int) -> DifferentialPrivacy:
        """`preset` is "high" (eps 0.1), "medium" (eps 1) or "low" (eps 10) privacy."""
        if preset not in EPSILON_PRESETS:
            raise InvalidAggregationParameter(f"unknown privacy preset {preset!r}; known: {sorted(EPSILON_PRESETS)}")
        return cls(inner, clip_norm=clip_norm, epsilon=EPSILON_PRESETS[preset], seed=seed)

    def compute_noise_sigma(self, num_samples: list[int]) -> float:
        sensitivity = self.inner.compute_sensitivity(num_samples, self.clip_norm)
        return compute_gaussian_sigma(self.epsilon, self.delta, sensitivity)

    def compute(self, params: list[dict[str, torch.Tensor]], num_samples: list[int]) -> dict[str, torch.Tensor]:
        sigma = self.compute_noise_sigma(num_samples)  # raises first for rules without a bound
        clipped = [compute_clipped(p, self.clip_norm) for p in params]
        result = self.inner.compute(clipped, num_samples)
        noisy = {}
        for name in sorted(result):
            value = result[name]
            # Drawn on CPU whatever the device: the same seed gives the same noise everywhere.
            noise = torch.normal(0.0, sigma, size=value.shape, generator=self._generator, dtype=value.dtype)
            noisy[name] = value + noise.to(value.device)
        return noisy
