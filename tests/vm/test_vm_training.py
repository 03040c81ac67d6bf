"""A VM-executed training program from BML on scikit-learn's digits, and deterministic replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from bcai.vm import VM, evaluate, from_bml, train_epochs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bml"


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def test_bml_cnn_on_digits_reaches_97_percent(digits):
    x_train, x_test, y_train, y_test = digits
    session = VM("cpu", deterministic=True).load(from_bml(EXAMPLES / "digits_cnn.yaml"))
    metrics = train_epochs(session, x_train, y_train)
    loss, accuracy = evaluate(session, x_test, y_test)
    assert accuracy >= 0.97, accuracy
    assert loss < 0.2
    steps = 10 * -(-len(x_train) // 32)
    assert metrics.instructions == steps * len(session.program.entry("train_step").body)
    assert metrics.flops > 0 and metrics.gas > metrics.flops


def test_deterministic_mode_gives_identical_outputs_and_hashes(digits):
    x_train, _, y_train, _ = digits
    program = from_bml(EXAMPLES / "digits_cnn.yaml")
    runs = []
    for _ in range(2):
        session = VM("cpu", deterministic=True).load(program)
        train_epochs(session, x_train[:256], y_train[:256], epochs=2)
        out, _ = session.run("forward", {"x": torch.from_numpy(x_train[:16])})
        runs.append((session.compute_model_hash(), session.compute_state_hash(), out["logits"]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])
    other = VM("cpu", deterministic=True).load(program)
    train_epochs(other, x_train[:256], y_train[:256], epochs=2, seed=99)  # other batch order
    assert other.compute_model_hash() != runs[0][0]


def test_dropout_training_is_replayable(digits):
    x_train, _, y_train, _ = digits
    program = from_bml(EXAMPLES / "digits_mlp.yaml")
    hashes = set()
    for _ in range(2):
        session = VM("cpu", deterministic=True).load(program)
        train_epochs(session, x_train[:128].reshape(-1, 64), y_train[:128], epochs=1)
        hashes.add(session.compute_model_hash())
    assert len(hashes) == 1


def test_checkpoint_resume_is_bitwise_identical_to_an_uninterrupted_run(digits):
    x_train, _, y_train, _ = digits
    for name, shape in (("digits_cnn.yaml", (-1, 1, 8, 8)), ("digits_mlp.yaml", (-1, 64))):  # the MLP has dropout
        program = from_bml(EXAMPLES / name)
        x = x_train.reshape(shape)
        whole = VM("cpu", deterministic=True).load(program)
        train_epochs(whole, x[:128], y_train[:128], epochs=1, batch_size=32)
        train_epochs(whole, x[128:256], y_train[128:256], epochs=1, batch_size=32)
        first = VM("cpu", deterministic=True).load(program)
        train_epochs(first, x[:128], y_train[:128], epochs=1, batch_size=32)
        resumed = VM("cpu", deterministic=True).load(program)
        resumed.import_state(first.export_state())
        train_epochs(resumed, x[128:256], y_train[128:256], epochs=1, batch_size=32)
        assert resumed.compute_state_hash() == whole.compute_state_hash(), name
