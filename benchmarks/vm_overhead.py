"""VM overhead: the same training run executed by the VM and by eager PyTorch, side by side.

Two workloads, each an identical training run in both executors (same initial weights,
same batches, same optimizer, same thread count), advanced in lockstep with alternating
order, step by step, so that load on the machine hits both alike; the ratio is of the
median step times (the ratio of the fastest steps is printed too: on a shared machine it
is the least disturbed estimate):

- digits CNN (the BML example's model: conv 3x3 x32, max-pool, 128, 10), batch 64, Adam;
- a 4096-wide MLP (1024 -> 4096 -> 4096 -> 10), batch 64, Adam.

Goals: VM time <= 1.05x eager (CNN) and <= 1.02x (4096-wide MLP). The script also checks
that both executors end with bitwise identical parameters (it is the same run). Where a
CUDA GPU exists, the same comparison runs on CUDA too.

    .venv/bin/python benchmarks/vm_overhead.py [--steps 300] [--mlp-steps 30] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bcai.vm import VM, OptimizerConfig, compile_torch


def digits_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10))


def wide_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))


def compute_ratio(vm_s: float, eager_s: float) -> float:
    return vm_s / eager_s if eager_s > 0 else float("inf")


def bench(name: str, factory, input_shape: tuple[int, ...], steps: int, device: str) -> dict:
    torch.manual_seed(0)
    template = factory()
    batches = [(torch.randn(64, *input_shape, device=device), torch.randint(0, 10, (64,), device=device))
               for _ in range(8)]
    program = compile_torch(template, torch.zeros(1, *input_shape), loss="cross_entropy",
                            optimizer=OptimizerConfig("adam", lr=0.002))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def fresh_eager():
        model = factory().to(device)
        model.load_state_dict(template.state_dict())
        return model, torch.optim.Adam(model.parameters(), lr=0.002)

    def eager_step(model, opt, k: int) -> float:
        x, y = batches[k % len(batches)]
        sync()
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sync()
        return time.perf_counter() - start

    def vm_step(session, k: int) -> float:
        x, y = batches[k % len(batches)]
        sync()
        start = time.perf_counter()
        session.run("train_step", {"x": x, "y": y})
        sync()
        return time.perf_counter() - start

    vm = VM(device)
    model, opt = fresh_eager()
    session = vm.load(program)
    for k in range(3):  # warm-up: first-call allocations, planning for this batch shape
        eager_step(model, opt, k)
        vm_step(session, k)
    # Both runs start again from the same weights and advance in lockstep, alternating
    # which goes first, so that load on the machine hits both alike.
    model, opt = fresh_eager()
    session = vm.load(program)
    eager_times, vm_times = [], []
    for k in range(steps):
        if k % 2:
            vm_times.append(vm_step(session, k))
            eager_times.append(eager_step(model, opt, k))
        else:
            eager_times.append(eager_step(model, opt, k))
            vm_times.append(vm_step(session, k))
    vm_params = session.get_parameters()
    same = all(torch.equal(vm_params[k], v.detach().cpu()) for k, v in model.state_dict().items())
    eager_s, vm_s = statistics.median(eager_times), statistics.median(vm_times)
    return {"workload": name, "device": device, "threads": torch.get_num_threads(), "steps": steps,
            "eager_ms_per_step": 1e3 * eager_s, "vm_ms_per_step": 1e3 * vm_s,
            "eager_total_s": sum(eager_times), "vm_total_s": sum(vm_times),
            "ratio": compute_ratio(vm_s, eager_s),
            "min_ratio": compute_ratio(min(vm_times), min(eager_times)), "identical_parameters": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (CNN)")
    parser.add_argument("--mlp-steps", type=int, default=30, help="training steps (4096-wide MLP)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    goals = {"digits-cnn": 1.05, "mlp-4096": 1.02}
    rows = []
    for device in devices:
        rows.append(bench("digits-cnn", digits_cnn, (1, 8, 8), args.steps, device))
        rows.append(bench("mlp-4096", wide_mlp, (1024,), args.mlp_steps, device))
    if not torch.cuda.is_available():
        print("(no CUDA GPU on this machine: CPU comparison only)")
    for row in rows:
        row["goal"] = goals[row["workload"]]
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{row['workload']:<11} {row['device']:<5} threads={row['threads']} "
                  f"eager {row['eager_ms_per_step']:8.3f} ms/step   vm {row['vm_ms_per_step']:8.3f} ms/step   "
                  f"ratio {row['ratio']:.3f} (of minimums {row['min_ratio']:.3f}; goal <= {row['goal']})   "
                  f"identical parameters: "
                  f"{row['identical_parameters']}")


if __name__ == "__main__":
    main()
