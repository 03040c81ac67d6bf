"""Driving a training program over in-memory arrays (a thin shell over `Session.run`).

The network's training runner feeds batches from content-addressed datasets; this module
is the simplest driver of the same entries, used by tests, benchmarks and local runs:

    session = VM(deterministic=True).load(from_bml(path))
    metrics = train_epochs(session, x_train, y_train, seed=7)
    loss, accuracy = evaluate(session, x_test, y_test)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bcai.errors import InvalidFeed
from bcai.vm.interpreter import Metrics, Session


def compute_batch_order(n: int, epoch: int, seed: int) -> np.ndarray:
    """The example order of one epoch: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_epochs(session: Session, x: Any, y: Any, *, epochs: int | None = None, batch_size: int | None = None,
                 seed: int | None = None) -> Metrics:
    """Run the program's train entry over (x, y) for `epochs` epochs of shuffled batches
    (defaults from the program's TrainingPlan); return the summed metrics."""
    plan = session.program.training
    if plan is None:
        raise InvalidFeed("the program has no training plan (compile it from BML or with a loss)")
    epochs = plan.epochs if epochs is None else epochs
    batch_size = plan.batch_size if batch_size is None else batch_size
    seed = session.program.seed if seed is None else seed
    xs, ys = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    if len(xs) != len(ys) or len(xs) == 0:
        raise InvalidFeed(f"features and labels need the same non-zero length, got {len(xs)} and {len(ys)}")
    total = Metrics()
    for epoch in range(epochs):
        order = torch.from_numpy(compute_batch_order(len(xs), epoch, seed))
        for start in range(0, len(xs), batch_size):
            idx = order[start:start + batch_size]
            _, metrics = session.run(plan.train_entry, {plan.feature_input: xs[idx], plan.label_input: ys[idx]})
            total = total + metrics
    return total


def evaluate(session: Session, x: Any, y: Any, batch_size: int = 512) -> tuple[float, float]:
    """Mean loss and accuracy of the program's eval entry over (x, y)."""
    plan = session.program.training
    if plan is None:
        raise InvalidFeed("the program has no training plan")
    xs, ys = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    loss, correct = 0.0, 0
    for start in range(0, len(xs), batch_size):
        out, _ = session.run(plan.eval_entry, {plan.feature_input: xs[start:start + batch_size],
                                               plan.label_input: ys[start:start + batch_size]})
        loss += float(out["loss_sum"])
        correct += int(out["correct"]) if "correct" in out else 0
    return loss / len(xs), correct / len(xs)
