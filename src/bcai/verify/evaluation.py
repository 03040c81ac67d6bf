"""Evaluating a submitted model on the job's held-out test split (evaluator side).

The evaluator loads the job's program (compiled from the spec's BML), installs the
submitted parameters, and measures loss and accuracy with the program's own `evaluate`
entry in deterministic mode, so two honest evaluators report the same accuracy. The
submitted bytes must name exactly the program's parameters with their shapes and dtypes;
anything else is a malformed model (a reason to reject, never a crash).
"""

from __future__ import annotations

from dataclasses import dataclass

from bcai.crypto import Cid
from bcai.errors import BcaiError, InvalidSubmittedModel
from bcai.training.data import Dataset
from bcai.vm.interpreter import VM
from bcai.vm.loop import evaluate
from bcai.vm.program import Program
from bcai.vm.tensors import compute_tensors_hash, decode_tensors


@dataclass(frozen=True)
class Evaluation:
    model_cid: Cid
    loss: float
    accuracy: float
    accuracy_bps: int  # what goes on chain
    samples: int


def evaluate_model(program: Program, model: bytes, test: Dataset, vm: VM | None = None) -> Evaluation:
    """Accuracy of `model` (canonical tensor bytes) on `test`; raises `InvalidSubmittedModel`."""
    session = (vm or VM(deterministic=True)).load(program)
    try:
        params = decode_tensors(model)
    except BcaiError as exc:
        raise InvalidSubmittedModel(f"model bytes are not named tensors: {exc}") from None
    expected = session.get_parameters()
    if set(params) != set(expected):
        raise InvalidSubmittedModel(f"model has tensors {sorted(params)}, the program needs {sorted(expected)}")
    for name, tensor in params.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise InvalidSubmittedModel(f"tensor {name!r} is {tuple(tensor.shape)} {tensor.dtype}, "
                               f"expected {tuple(expected[name].shape)} {expected[name].dtype}")
    session.set_parameters(params)
    loss, accuracy = evaluate(session, test.x, test.y)
    correct = round(accuracy * len(test))
    return Evaluation(compute_tensors_hash(params), loss, accuracy, correct * 10_000 // len(test), len(test))
