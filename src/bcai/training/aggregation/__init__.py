"""Aggregation rules: a small base class, one file per rule (Flower-style).

- `base.py`: `AggregationRule` (`aggregate(updates)`, `compute`, `compute_sensitivity`).
- `fedavg.py`: `FedAvg`, sample-weighted mean.
- `fedprox.py`: `FedProx` (server side = FedAvg) and `compute_proximal_term` for clients.
- `median.py`: `Median`, coordinate-wise.
- `sorting.py`: coordinate-wise sort across updates (vectorized sorting network + numpy reference).
- `trimmed_mean.py`: `TrimmedMean(beta)`, coordinate-wise.
- `krum.py`: `Krum(f, m=1)`: Krum, and multi-Krum for m > 1.
- `outliers.py`: `compute_outlier_flags` (beyond median distance + 3 x MAD).
"""

from bcai.training.aggregation.base import AggregationRule
from bcai.training.aggregation.fedavg import FedAvg
from bcai.training.aggregation.fedprox import FedProx, compute_proximal_term
from bcai.training.aggregation.krum import Krum
from bcai.training.aggregation.median import Median
from bcai.training.aggregation.outliers import DEFAULT_MAD_MULTIPLIER, OutlierFlag, compute_outlier_flags
from bcai.training.aggregation.trimmed_mean import TrimmedMean

__all__ = [
    "DEFAULT_MAD_MULTIPLIER",
    "AggregationRule",
    "FedAvg",
    "FedProx",
    "Krum",
    "Median",
    "OutlierFlag",
    "TrimmedMean",
    "compute_outlier_flags",
    "compute_proximal_term",
]
