"""Python bridge: warm-start latency per execution and executions per second.

A "warm start" is one `PythonSandbox.run` once the zygote is up: fork, lock-down
(rlimits, Landlock, capability/uid drop, seccomp), run a trivial program on a small
tensor, send the outputs back, reap, remove the work dir. Side by side: the floor of the
same machine, a bare `os.fork()` + `_exit` + `waitpid` from the same warm interpreter, and
a cold `python -c 'import numpy'` subprocess (what a fresh process per run would cost
without the zygote). Goal: under 50 ms per execution.

Run: .venv/bin/python benchmarks/sandbox_python.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bcai.sandbox.python import PythonConstraints, PythonSandbox

N = 100
CODE = "outputs['y'] = inputs['x'] * 2 + 1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    x = np.arange(1024, dtype=np.float32)
    constraints = PythonConstraints(max_execution_time_ms=5000)
    with PythonSandbox() as box:
        for _ in range(5):  # warm-up
            assert box.run(CODE, {"x": x}, constraints).ok
        latencies = []
        for _ in range(N):
            start = time.perf_counter()
            result = box.run(CODE, {"x": x}, constraints)
            latencies.append((time.perf_counter() - start) * 1000)
            assert result.ok, result.message
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = list(pool.map(lambda _: box.run(CODE, {"x": x}, constraints), range(N)))
        parallel_s = time.perf_counter() - start
        assert all(r.ok for r in results)
        mode = box.privilege_mode

    forks = []
    for _ in range(N):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        forks.append((time.perf_counter() - start) * 1000)
    colds = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
        colds.append((time.perf_counter() - start) * 1000)

    median = statistics.median(latencies)
    print(f"privilege mode: {mode}; {os.cpu_count()} cores")
    print(f"warm start latency: median {median:.1f} ms, p90 {_percentile(latencies, 0.9):.1f} ms, "
          f"p99 {_percentile(latencies, 0.99):.1f} ms  (goal < 50 ms: {'met' if median < 50 else 'MISSED'})")
    print(f"executions/s: {1000 / statistics.mean(latencies):.1f} sequential, {N / parallel_s:.1f} with {os.cpu_count()} threads")
    print(f"floor, bare fork+exit+wait of this interpreter: median {statistics.median(forks):.1f} ms "
          f"(bridge = {median / statistics.median(forks):.1f}x)")
    print(f"cold python+numpy subprocess: median {statistics.median(colds):.1f} ms "
          f"(zygote saves {statistics.median(colds) / median:.1f}x)")


if __name__ == "__main__":
    main()
