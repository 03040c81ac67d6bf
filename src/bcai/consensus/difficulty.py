"""Difficulty: the PoUW target moves toward a target block time, at most 5% per block.

The target is a 64-bit integer compared with the first 8 bytes of the work hash, so the
expected number of nonce tries is 2^64 / target. After a block whose interval (its time
minus its parent's time) was longer than the target block time the target grows (work
gets easier), after a shorter one it shrinks; the factor is the ratio of the two times,
clamped to [1 - max_change, 1 + max_change]. Integer arithmetic in parts per million,
rounded down, so every node computes the same value.

The target never goes below `compute_min_target(max_change_ppm)` (20 for 5%): under that,
a whole 5% step of the target rounds down to nothing, so the target could shrink but never
grow again (a target of 19 times 1.05 is 19.95, which rounds back to 19), and the chain
would be stuck at a difficulty no slower block could ever lower. From the minimum up, every
full step moves the target by at least 1 and by at most 5%.
"""

from __future__ import annotations

from bcai.verify.pouw import MAX_TARGET

PPM = 1_000_000


def compute_min_target(max_change_ppm: int) -> int:
    """The smallest target whose 5% (`max_change_ppm`) step is at least 1."""
    return 1 if max_change_ppm <= 0 else -(-PPM // max_change_ppm)


def compute_next_target(target: int, interval_ms: int, target_block_ms: int, max_change_ppm: int = 50_000) -> int:
    """The target for the child of a block that had `target` and took `interval_ms`."""
    if target_block_ms <= 0:
        raise ValueError("target block time must be positive")
    if not 0 <= max_change_ppm < PPM:
        raise ValueError("max change must be in [0, 1) (parts per million)")
    low = compute_min_target(max_change_ppm)
    if not low <= target <= MAX_TARGET:
        raise ValueError(f"target must be in {low}..2^64-1, got {target}")
    ratio_ppm = max(0, interval_ms) * PPM // target_block_ms
    ratio_ppm = min(max(ratio_ppm, PPM - max_change_ppm), PPM + max_change_ppm)
    return max(low, min(MAX_TARGET, target * ratio_ppm // PPM))
