"""Difficulty: the PoUW target moves toward a target block time, at most 5% per block.

The target is a 64-bit integer compared with the first 8 bytes of the work hash, so the
expected number of nonce tries is 2^64 / target. After a block whose interval (its time
minus its parent's time) was longer than the target block time the target grows (work
gets easier), after a shorter one it shrinks; the factor is the ratio of the two times,
clamped to [1 - max_change, 1 + max_change]. Integer arithmetic in parts per million, so
every node computes the same value.
"""

from __future__ import annotations

from bcai.verify.pouw import MAX_TARGET

PPM = 1_000_000


def compute_next_target(target: int, interval_ms: int, target_block_ms: int, max_change_ppm: int = 50_000) -> int:
    """The target for the child of a block that had `target` and took `interval_ms`."""
    if target_block_ms <= 0:
        raise ValueError("target block time must be positive")
    if not 0 <= max_change_ppm < PPM:
        raise ValueError("max change must be in [0, 1) (parts per million)")
    ratio_ppm = max(0, interval_ms) * PPM // target_block_ms
    ratio_ppm = min(max(ratio_ppm, PPM - max_change_ppm), PPM + max_change_ppm)
    return max(1, min(MAX_TARGET, target * ratio_ppm // PPM))
