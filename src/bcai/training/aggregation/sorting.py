"""Coordinate-wise sorting across updates, for the median and the trimmed mean.

`compute_sorted_stack(tensors)` stacks n same-shaped tensors on a new first axis and
sorts every coordinate along it. On CPU, for n <= `NETWORK_MAX_UPDATES`, it runs a
Batcher odd-even merge sorting network vectorized over the coordinates: each comparator
is an elementwise min/max of two rows, applied chunk by chunk so the rows stay in cache.
Measured here on 10 x 10M float32: 1.1 s vs 3.1 s for `numpy.sort(axis=0)` (itself
~2.5x faster than `torch.sort(dim=0)`). `numpy.sort` remains the reference
(`compute_sorted_stack_reference`); tests check the two agree, and check the network on
every 0/1 input (the 0-1 principle: a comparator network that sorts all 0/1 sequences
sorts everything).

Batcher's network is built for the next power of two and pruned: comparators that touch
an index >= n only ever meet the +infinity padding, which never moves, so dropping them
keeps the network correct for any n.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

NETWORK_MAX_UPDATES = 32
CHUNK = 8192
_NUMPY_SORTABLE = {torch.float16, torch.float32, torch.float64}


@lru_cache(maxsize=None)
def compute_sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (low, high) of Batcher's odd-even merge sort for n inputs."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    block = 1
    while block < size:
        step = block
        while step >= 1:
            start = step % block
            while start <= size - 1 - step:
                for i in range(min(step - 1, size - start - step - 1) + 1):
                    if (i + start) // (block * 2) == (i + start + step) // (block * 2):
                        pairs.append((i + start, i + start + step))
                start += 2 * step
            step //= 2
        block *= 2
    return tuple((a, b) for a, b in pairs if b < n)


def compute_sorted_stack_reference(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The obvious version: stack, then sort along the new axis."""
    if all(t.device.type == "cpu" and t.dtype in _NUMPY_SORTABLE for t in tensors):
        return torch.from_numpy(np.sort(np.stack([t.numpy() for t in tensors]), axis=0))
    return torch.sort(torch.stack(tensors), dim=0).values


def _network_sort(arrays: list[np.ndarray]) -> np.ndarray:
    n = len(arrays)
    flat = [a.reshape(-1) for a in arrays]
    size = flat[0].size
    out = np.empty((n, size), dtype=flat[0].dtype)
    scratch = np.empty(min(CHUNK, size), dtype=out.dtype)
    network = compute_sorting_network(n)
    for begin in range(0, size, CHUNK):
        end = min(begin + CHUNK, size)
        rows = [out[i, begin:end] for i in range(n)]
        for row, source in zip(rows, flat):
            row[...] = source[begin:end]
        low = scratch[: end - begin]
        for a, b in network:
            np.minimum(rows[a], rows[b], out=low)
            np.maximum(rows[a], rows[b], out=rows[b])
            rows[a][...] = low
    return out.reshape((n, *arrays[0].shape))


def compute_sorted_stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors stacked on a new first axis, each coordinate sorted along it."""
    cpu = all(t.device.type == "cpu" and t.dtype in _NUMPY_SORTABLE for t in tensors)
    if cpu and 1 < len(tensors) <= NETWORK_MAX_UPDATES:
        return torch.from_numpy(_network_sort([t.numpy() for t in tensors]))
    return compute_sorted_stack_reference(tensors)
