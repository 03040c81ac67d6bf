"""Freivalds verification vs solving the PoUW matrix task, side by side.

For n in 256, 512, 1024, 2048 it times, best of several runs:
- solve: the exact product A @ B with float64 BLAS on the task's cached float64 copies
  (what an honest prover runs once the task is set up);
- int64: the exact product in int64 NumPy (no BLAS; what recomputing in integers costs);
- setup: what a validator does once per height: expand A and B from the task id (PCG64)
  and make their float64 copies (`MatrixTaskCache` keeps them for every proposal and round);
- verify: what it does per proposal with the task cached: check the size, hash the result
  (SHA-256), check the task id, draw k = 4 vectors of 16-bit entries from the work hash, one
  pass over C (range check + r^T C in row blocks), r^T A B; false accept <= 2^-64;
- hash: SHA-256 of the result alone (part of verify, and its floor: every byte is read);
- cold: verify with an empty cache (setup + verify in one call).
It prints solve / verify (per proposal) and solve / (setup + verify) (one proposal at a
height, nothing amortised).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/freivalds.py [--sizes 256,512,1024,2048] [--int64-max 512]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from bcai.crypto import sha256
from bcai.verify import (
    MatrixProductKind,
    MatrixTaskCache,
    WorkContext,
    compute_matrix_task,
    encode_matrix_result,
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
    print(f"{'n':>5} {'solve ms':>9} {'int64 ms':>9} {'setup ms':>9} {'verify ms':>10} {'hash ms':>8} "
          f"{'cold ms':>8} {'solve/verify':>13} {'solve/(setup+verify)':>21} {'int64/verify':>13}")
    for n in (int(x) for x in args.sizes.split(",")):
        ctx = WorkContext(prev, 1, n, args.k)
        repeat = 7 if n <= 1024 else 3
        setup = best_of(lambda: compute_matrix_task(prev, 1, n), repeat)
        task = compute_matrix_task(prev, 1, n)
        solve = best_of(lambda: solve_matrix_task(task), repeat)
        if n <= args.int64_max:
            a64, b64 = task.a.astype(np.int64), task.b.astype(np.int64)
            int64 = best_of(lambda: a64 @ b64, 1)
        else:
            int64 = float("nan")
        result = encode_matrix_result(solve_matrix_task(task))
        model_hash = sha256(result)
        work_hash = sha256(b"work" + model_hash)
        warm = MatrixProductKind(MatrixTaskCache())
        warm.verify(ctx, task.task_id, model_hash, result, work_hash)  # sets the height up
        verify = best_of(lambda: warm.verify(ctx, task.task_id, model_hash, result, work_hash), repeat * 2)
        assert warm.tasks.misses == 1
        hashing = best_of(lambda: sha256(result), repeat * 2)

        def cold_verify() -> None:
            MatrixProductKind(MatrixTaskCache()).verify(ctx, task.task_id, model_hash, result, work_hash)

        cold = best_of(cold_verify, repeat)
        print(f"{n:>5} {solve * 1e3:>9.1f} {int64 * 1e3:>9.1f} {setup * 1e3:>9.2f} {verify * 1e3:>10.2f} "
              f"{hashing * 1e3:>8.2f} {cold * 1e3:>8.2f} {solve / verify:>12.1f}x "
              f"{solve / (setup + verify):>20.1f}x {int64 / verify:>12.0f}x")


if __name__ == "__main__":
    main()
