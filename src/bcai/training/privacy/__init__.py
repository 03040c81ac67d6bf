"""Privacy for federated rounds.

- `dp.py`: `DifferentialPrivacy`, a wrapper rule (clip, aggregate, Gaussian noise from
  the analytic Gaussian mechanism), `EPSILON_PRESETS`, `compute_gaussian_sigma`.
- `secagg.py`: secure aggregation with pairwise masks (`compute_pair_seed`,
  `compute_masked_update`, `compute_secure_average`); no dropout recovery.
"""

from bcai.training.privacy.dp import (
    DEFAULT_DELTA,
    EPSILON_PRESETS,
    DifferentialPrivacy,
    compute_classic_sigma,
    compute_clipped,
    compute_gaussian_sigma,
)
from bcai.training.privacy.secagg import (
    FRACTIONAL_BITS,
    MaskedUpdate,
    compute_mask,
    compute_masked_update,
    compute_pair_seed,
    compute_pair_seed_from_secret,
    compute_secure_average,
    compute_secure_sum,
)

__all__ = [
    "DEFAULT_DELTA",
    "EPSILON_PRESETS",
    "FRACTIONAL_BITS",
    "DifferentialPrivacy",
    "MaskedUpdate",
    "compute_classic_sigma",
    "compute_clipped",
    "compute_gaussian_sigma",
    "compute_mask",
    "compute_masked_update",
    "compute_pair_seed",
    "compute_pair_seed_from_secret",
    "compute_secure_average",
    "compute_secure_sum",
]
