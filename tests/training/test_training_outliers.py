import pytest
import torch

from bcai.errors import InvalidAggregationParameter
from bcai.training import ModelUpdate, compute_outlier_flags


def upd(*values):
    return ModelUpdate({"w": torch.tensor(values, dtype=torch.float32)})


def test_scaled_poisoned_update_is_flagged_with_its_reason():
    honest = [upd(1.0, 1.0), upd(1.1, 0.9), upd(0.9, 1.1), upd(1.05, 1.0), upd(0.95, 1.0)]
    flags = compute_outlier_flags(honest + [upd(-40.0, 40.0)])
    assert [f.index for f in flags] == [5]
    assert flags[0].distance > flags[0].threshold
    assert "3 x MAD" in flags[0].reason


def test_honest_updates_are_not_flagged():
    gen = torch.Generator().manual_seed(3)
    updates = [ModelUpdate({"w": 1.0 + 0.01 * torch.randn(100, generator=gen)}) for _ in range(9)]
    assert compute_outlier_flags(updates) == ()


def test_multiplier_is_a_parameter():
    updates = [upd(0.0), upd(1.0), upd(2.0), upd(3.0), upd(10.0)]
    # distances from median 2: 2, 1, 0, 1, 8 -> median 1, MAD 1
    assert [f.index for f in compute_outlier_flags(updates, 3.0)] == [4]
    assert [f.index for f in compute_outlier_flags(updates, 0.5)] == [0, 4]


def test_zero_mad_flags_anything_beyond_the_median_distance():
    updates = [upd(1.0), upd(1.0), upd(1.0), upd(1.5)]
    assert [f.index for f in compute_outlier_flags(updates)] == [3]
    assert compute_outlier_flags([upd(1.0)] * 3) == ()


def test_invalid_multiplier_is_rejected():
    for bad in (-1.0, float("nan"), "3", True):
        with pytest.raises(InvalidAggregationParameter):
            compute_outlier_flags([upd(1.0)], bad)
