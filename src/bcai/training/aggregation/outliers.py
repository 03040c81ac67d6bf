"""Outlier flagging: updates far from the coordinate-wise median (a BCAI parameter, 3x MAD).

d_i is the L2 distance of update i from the coordinate-wise median of all updates;
MAD = median(|d_i - median(d)|). Update i is flagged when d_i > median(d) + k * MAD
(k = 3 by default). Only distances above the median count: being close to the
consensus is not suspicious. When MAD is 0 (more than half the updates sit at the
same distance), any distance above the median is flagged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bcai.errors import InvalidAggregationParameter
from bcai.training.aggregation.median import compute_coordinate_median
from bcai.training.updates import ModelUpdate, check_updates, compute_flat

DEFAULT_MAD_MULTIPLIER = 3.0


@dataclass(frozen=True)
class OutlierFlag:
    """One flagged update: its index in the input, its distance and the threshold it passed."""

    index: int
    distance: float
    threshold: float
    reason: str


def compute_outlier_flags(
    updates: Sequence[ModelUpdate], mad_multiplier: float = DEFAULT_MAD_MULTIPLIER
) -> tuple[OutlierFlag, ...]:
    """The flagged updates, by ascending index."""
    if (
        isinstance(mad_multiplier, bool)
        or not isinstance(mad_multiplier, (int, float))
        or not math.isfinite(mad_multiplier)
        or mad_multiplier < 0
    ):
        raise InvalidAggregationParameter(f"mad_multiplier must be a finite number >= 0, got {mad_multiplier!r}")
    params = check_updates(updates)
    median = compute_flat(compute_coordinate_median(params))
    distances = [float((compute_flat(p) - median).norm()) for p in params]
    centre = statistics.median(distances)
    mad = statistics.median(abs(d - centre) for d in distances)
    threshold = centre + mad_multiplier * mad
    return tuple(
        OutlierFlag(
            index=i,
            distance=d,
            threshold=threshold,
            reason=(
                f"distance {d:.6g} from the coordinate-wise median exceeds median distance {centre:.6g}"
                f" + {mad_multiplier:g} x MAD {mad:.6g}"
            ),
        )
        for i, d in enumerate(distances)
        if d > threshold
    )
