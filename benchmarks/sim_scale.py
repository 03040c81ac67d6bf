"""Simulation speed: how long a simulated network takes, and how it grows with its size.

1. 100 validators x 100 heights, no faults (the goal: under 60 s wall on the 2-core
   development machine);
2. growth: 4, 100 and 400 validators, a few heights each, reported per height and per
   delivered message, with the ratio to the 4-validator run.

Messages grow as n^2 per height (every validator's votes reach every other validator),
so the physical floor is the per-message cost; the script prints it.

    .venv/bin/python benchmarks/sim_scale.py [--heights 100] [--growth-heights 5] [--sizes 4,100,400]
"""

from __future__ import annotations

import argparse
import os
import time

from bcai.sim import SimConfig, run_simulation


def run(validators: int, heights: int, seed: int) -> tuple[float, float, int, bool]:
    cpu0 = time.process_time()
    report = run_simulation(SimConfig(validators=validators, heights=heights, seed=seed))
    return report.wall_seconds, time.process_time() - cpu0, report.messages_delivered, report.ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heights", type=int, default=100)
    ap.add_argument("--growth-heights", type=int, default=5)
    ap.add_argument("--sizes", default="4,100,400")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    wall, cpu, msgs, ok = run(100, args.heights, 1)
    print(f"100 validators x {args.heights} heights: wall {wall:.1f} s, cpu {cpu:.1f} s, "
          f"{msgs} messages delivered ({1e6 * cpu / msgs:.1f} us cpu each), checkers ok: {ok}")
    print(f"{'validators':>10} {'heights':>8} {'wall s':>8} {'cpu s':>8} {'cpu s/height':>13} {'messages':>10} "
          f"{'us/message':>11} {'x (4 val.)':>11}")
    base = None
    for n in (int(x) for x in args.sizes.split(",")):
        wall, cpu, msgs, ok = run(n, args.growth_heights, 2)
        per_height = cpu / args.growth_heights
        base = base or per_height
        print(f"{n:>10} {args.growth_heights:>8} {wall:>8.2f} {cpu:>8.2f} {per_height:>13.3f} {msgs:>10} "
              f"{1e6 * cpu / max(1, msgs):>11.1f} {per_height / base:>10.0f}x" + ("" if ok else "  CHECKER FAILED"))


if __name__ == "__main__":
    main()
