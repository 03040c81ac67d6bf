import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai.training.aggregation.sorting import (
    CHUNK,
    compute_sorted_stack,
    compute_sorted_stack_reference,
    compute_sorting_network,
)


@pytest.mark.parametrize("n", range(1, 13))
def test_network_sorts_every_zero_one_input(n):
    network = compute_sorting_network(n)
    for bits in itertools.product((0, 1), repeat=n):
        values = list(bits)
        for a, b in network:
            if values[a] > values[b]:
                values[a], values[b] = values[b], values[a]
        assert values == sorted(bits)


def test_network_indices_stay_in_range():
    for n in range(1, 33):
        assert all(0 <= a < b < n for a, b in compute_sorting_network(n))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.integers(1, 3 * CHUNK // 2), st.integers(0, 2**31 - 1), st.sampled_from([torch.float32, torch.float64, torch.float16]))
def test_fast_sort_matches_the_reference(n, size, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    tensors = [torch.randint(-5, 5, (size,), generator=gen).to(dtype) / 2 for _ in range(n)]  # many ties
    fast = compute_sorted_stack(tensors)
    assert torch.equal(fast, compute_sorted_stack_reference(tensors))


def test_fast_sort_keeps_shapes_and_handles_numpy_fallback_sizes():
    tensors = [torch.randn(3, 4, 5) for _ in range(40)]  # above the network limit: numpy sort
    out = compute_sorted_stack(tensors)
    assert out.shape == (40, 3, 4, 5)
    assert np.array_equal(out.numpy(), np.sort(np.stack([t.numpy() for t in tensors]), axis=0))
    small = [torch.randn(2, 2) for _ in range(3)]
    assert torch.equal(compute_sorted_stack(small), compute_sorted_stack_reference(small))
