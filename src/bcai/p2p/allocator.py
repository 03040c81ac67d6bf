"""Process-wide malloc settings for a process that moves large frames (a node).

glibc serves every allocation above its mmap threshold (128 KiB at start, raised on the
fly up to 32 MiB) with a fresh `mmap`, and gives freed memory at the top of the heap back
to the kernel above its trim threshold. A 4 MiB chunk frame therefore tends to arrive in
brand-new pages: the kernel zero-fills and charges each 4 KiB page on first touch (1,024
page faults per frame), for the ciphertext, the plaintext and the payload copy. Measured
on the encrypted channel between two processes (`benchmarks/p2p_transfer.py`): the
receiver spends ~1.7 ms of CPU per MiB with glibc's defaults and ~1.25 ms with these.

`tune_allocator()` fixes both thresholds: buffers up to 32 MiB (every frame is at most
16 MiB) come from the heap, and up to 128 MiB of freed heap stay with the process to be
reused. The price is that a node may keep up to that much freed memory mapped. Only the
node process calls it (`bcai node run`); importing bcai changes nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 128 * 1024 * 1024


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds for this process; False where that is not
    possible (not Linux, not glibc: musl's `mallopt` does nothing and says so)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) & bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
