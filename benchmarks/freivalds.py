"""Freivalds verification vs solving the PoUW matrix task, side by side.

For n in 256, 512, 1024, 2048 it times, best of several runs:
- solve: the exact product A @ B with float64 BLAS (what an honest prover runs);
- solve-int64: the exact product in int64 NumPy (no BLAS; what recomputing in integers costs);
- verify: everything a validator does for a block's result (regenerate A and B from the
  task id, hash the result, parse it, Freivalds with k = 4 vectors of 16-bit entries);
- check: only Freivalds' matrix-vector products A (B R) == C R.
It prints the ratios solve / verify and solve / check.

    .venv/bin/python benchmarks/freivalds.py [--sizes 256,512,1024,2048] [--int64-max 1024]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from bcai.crypto import sha256
from bcai.verify import (
    MATRIX_PRODUCT,
    WorkContext,
    compute_freivalds_vectors,
    compute_matrix_task,
    decode_matrix_result,
    encode_matrix_result,
    is_correct_product,
    solve_matrix_task,
)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1024,2048")
    ap.add_argument("--int64-max", type=int, default=512)
    ap.add_argument("--k", type=int, default=4)
    args = ap.parse_args()
    prev = sha256(b"benchmark parent")
    print(f"{'n':>5} {'solve ms':>10} {'int64 ms':>10} {'verify ms':>10} {'check ms':>9} "
          f"{'solve/verify':>13} {'solve/check':>12} {'int64/verify':>13}")
    for n in (int(x) for x in args.sizes.split(",")):
        ctx = WorkContext(prev, 1, n, args.k)
        task = compute_matrix_task(prev, 1, n)
        repeat = 5 if n <= 1024 else 3
        solve = best_of(lambda: solve_matrix_task(task), repeat)
        if n <= args.int64_max:
            a64, b64 = task.a.astype(np.int64), task.b.astype(np.int64)
            int64 = best_of(lambda: a64 @ b64, 1)
        else:
            int64 = float("nan")
        result = encode_matrix_result(solve_matrix_task(task))
        model_hash = sha256(result)
        work_hash = sha256(b"work" + model_hash)
        verify = best_of(lambda: MATRIX_PRODUCT.verify(ctx, task.task_id, model_hash, result, work_hash), repeat)
        c = decode_matrix_result(result, n)
        r = compute_freivalds_vectors(work_hash, n, args.k)
        af, bf, cf = (m.astype(np.float64) for m in (task.a, task.b, c))
        check = best_of(lambda: np.array_equal(af @ (bf @ r), cf @ r), repeat * 2)
        assert is_correct_product(task.a, task.b, c, r)
        print(f"{n:>5} {solve * 1e3:>10.1f} {int64 * 1e3:>10.1f} {verify * 1e3:>10.2f} {check * 1e3:>9.2f} "
              f"{solve / verify:>12.1f}x {solve / check:>11.1f}x {int64 / verify:>12.1f}x")


if __name__ == "__main__":
    main()
