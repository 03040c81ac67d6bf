"""Aggregation throughput vs a plain memory copy of the same bytes (the limit).

Throughput = bytes of update input (n updates x params x 4 bytes) / wall time of one
`rule.aggregate(updates)` call, best of `--repeat`. The limit is `Tensor.copy_` of the
same n tensors into preallocated buffers: a rule reads every input byte at least once,
so it cannot beat one pass of memcpy.

    .venv/bin/python benchmarks/aggregation.py                # 10 updates x 10M float32
    .venv/bin/python benchmarks/aggregation.py --params 1000000 --repeat 2
"""

from __future__ import annotations

import argparse
import time

import torch

from bcai.training import FedAvg, Krum, Median, ModelUpdate, TrimmedMean


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(args.params, generator=gen) for _ in range(args.updates)]
    updates = [ModelUpdate({"w": t}, 100 + i) for i, t in enumerate(tensors)]
    total_bytes = sum(t.numel() * t.element_size() for t in tensors)
    gb = total_bytes / 1e9

    buffers = [torch.empty_like(t) for t in tensors]

    def memcpy() -> None:
        for dst, src in zip(buffers, tensors):
            dst.copy_(src)

    limit_s = best_time(memcpy, args.repeat)
    limit = gb / limit_s
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.updates} updates x {args.params:,} float32 = {gb:.2f} GB of update bytes")
    print(f"{'rule':<22}{'time s':>10}{'GB/s':>10}{'x memcpy':>10}")
    print(f"{'memcpy (limit)':<22}{limit_s:>10.3f}{limit:>10.2f}{1.0:>10.2f}")
    f = max((args.updates - 3) // 2, 0)
    rules = [
        ("fedavg", FedAvg()),
        ("median", Median()),
        ("trimmed-mean b=0.1", TrimmedMean(0.1)),
        (f"krum f={f}", Krum(f)),
    ]
    for name, rule in rules:
        seconds = best_time(lambda rule=rule: rule.aggregate(updates), args.repeat)
        rate = gb / seconds
        print(f"{name:<22}{seconds:>10.3f}{rate:>10.2f}{rate / limit:>10.2f}")


if __name__ == "__main__":
    main()
