"""`bcai job`: the job file (JOB.yaml) is checked before anything is sent, with clear errors;
the example job file loads; commands fail cleanly on bad input (no node needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bcai.cli.app import app
from bcai.cli.job import JobFile, get_accepted_model, load_dataset, load_job_file
from bcai.errors import InvalidBml, InvalidJobDocument, WrongState

ROOT = Path(__file__).resolve().parents[2]
MLP = "bml: 1\nname: tiny\nmodel: {template: mlp, input_shape: [64], hidden: [8], num_classes: 10}\n" \
      "training: {optimizer: sgd, lr: 0.1, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 1}\n"
GOOD: dict[str, Any] = {"bml": "model.yaml", "dataset": "digits", "budget": 1000, "rounds": 2, "local_epochs": 1,
                        "aggregation": "median", "target_accuracy": 0.5, "evaluators": 1,
                        "workers": {"min": 1, "max": 2}, "worker_stake": 10, "deadline_blocks": 100}


def write_job(tmp_path: Path, doc: Any, bml: str = MLP) -> Path:
    (tmp_path / "model.yaml").write_text(bml)
    path = tmp_path / "job.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def test_the_example_job_file_loads_with_the_demo_model() -> None:
    job = load_job_file(ROOT / "examples" / "jobs" / "digits_job.yaml")
    assert (job.name, job.dataset, job.rounds, job.local_epochs, job.target_accuracy_bps) == \
        ("digits-cnn-federated", "digits", 8, 2, 9_700)
    assert (job.min_workers, job.max_workers, job.evaluators, job.budget) == (3, 3, 2, 1_000_000)
    train, test = load_dataset(job)
    assert train.x.shape == (1437, 1, 8, 8) and test.x.shape == (360, 1, 8, 8)


def test_a_job_file_with_a_relative_bml_path(tmp_path: Path) -> None:
    job = load_job_file(write_job(tmp_path, GOOD))
    assert job == JobFile(name="tiny", bml=MLP, dataset="digits", budget=1000, rounds=2, local_epochs=1,
                          aggregation="median", target_accuracy_bps=5_000, evaluators=1, min_workers=1,
                          max_workers=2, worker_stake=10, deadline_blocks=100)
    assert load_dataset(job)[0].x.shape == (1437, 64)  # reshaped for the MLP's input


@pytest.mark.parametrize("change, message", [
    ({"dataset": "cifar10"}, "not supported"),
    ({"dataset": None}, "not supported"),
    ({"aggregation": "mean"}, "aggregation"),
    ({"target_accuracy": 1.5}, "target_accuracy"),
    ({"target_accuracy": 0}, "target_accuracy"),
    ({"target_accuracy": "high"}, "target_accuracy"),
    ({"budget": 0}, "budget"),
    ({"rounds": 2.5}, "rounds"),
    ({"evaluators": True}, "evaluators"),
    ({"workers": {"min": 3, "max": 2}}, "workers.min"),
    ({"workers": 3}, "workers"),
    ({"deadline_blocks": None}, "deadline_blocks"),
    ({"bml": "missing.yaml"}, "cannot read the BML file"),
    ({"bml": 7}, "bml must name"),
    ({"colour": "blue"}, "unknown field"),
])
def test_invalid_job_file_fields(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJobDocument, match=message):
        load_job_file(write_job(tmp_path, {**GOOD, **change}))


def test_invalid_job_file_not_yaml_not_a_mapping_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidJobDocument, match="not valid YAML"):
        load_job_file(write_job(tmp_path, "a: [unclosed"))
    with pytest.raises(InvalidJobDocument, match="mapping"):
        load_job_file(write_job(tmp_path, "- a list"))
    with pytest.raises(InvalidJobDocument, match="cannot read job file"):
        load_job_file(tmp_path / "nowhere.yaml")


def test_invalid_bml_or_a_model_that_does_not_take_digits(tmp_path: Path) -> None:
    with pytest.raises(InvalidBml):
        load_job_file(write_job(tmp_path, GOOD, bml="bml: 1\nmodel: {template: nope}\n"))
    job = load_job_file(write_job(tmp_path, GOOD, bml=MLP.replace("[64]", "[32]")))
    with pytest.raises(InvalidJobDocument, match="64 pixels"):
        load_dataset(job)


def test_invalid_result_request_for_a_job_without_an_accepted_model() -> None:
    view = {"job_id": "ab" * 32, "state": "expired", "attestations": {}}
    with pytest.raises(WrongState, match="only a completed job"):
        get_accepted_model(view)
    accepted = {"e1": {"model_cid": "bafy1", "accept": True}, "e2": {"model_cid": "bafy1", "accept": True}}
    assert get_accepted_model({**view, "state": "completed", "attestations": accepted}) == "bafy1"


def test_invalid_submit_exits_with_the_error_code_before_contacting_a_node(tmp_path: Path) -> None:
    path = write_job(tmp_path, {**GOOD, "dataset": "mnist"})
    done = CliRunner().invoke(app, ["job", "submit", str(path), "--key", "client", "--url", "http://127.0.0.1:9",
                                    "--json"])
    assert done.exit_code != 0
    assert json.loads(done.stdout)["error"]["code"] == "invalid_job_document"
    done = CliRunner().invoke(app, ["job", "status", "ab" * 32, "--url", "http://127.0.0.1:9", "--json"])
    assert done.exit_code != 0 and json.loads(done.stdout)["error"]["code"] == "node_unreachable"
