"""`bcai job` with competitive job files: the example loads, the search grid is checked
with clear errors, and `result` / `status` read a competitive job's winner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bcai.cli.job import _show_job, get_accepted_model, load_job_file
from bcai.errors import InvalidJobDocument
from bcai.training.jobflow import prepare_job
from bcai.training.spec import JobSpec
from test_jobs_cli import GOOD, ROOT, write_job


def test_the_competitive_example_job_file_loads() -> None:
    job = load_job_file(ROOT / "examples" / "jobs" / "digits_competitive.yaml")
    assert (job.paradigm, job.search, job.min_workers) == ("competitive", {"lr": ["0.005", "0.02", "0.05"]}, 3)


def test_a_competitive_job_file_becomes_a_competitive_spec(tmp_path: Path) -> None:
    job = load_job_file(write_job(tmp_path, {**GOOD, "paradigm": "competitive", "workers": {"min": 2, "max": 2},
                                             "search": {"lr": [0.1, 1e-05, "0.3"], "batch_size": [16, 32]}}))
    assert job.search == {"lr": ["0.1", "1e-05", "0.3"], "batch_size": ["16", "32"]}
    from bcai.cli.job import load_dataset

    train, test = load_dataset(job)
    prepared = prepare_job(job.name, job.bml, train, test, rounds=1, local_epochs=1, paradigm=job.paradigm,
                           search=job.search)
    spec = JobSpec.from_bytes(prepared.artifacts[str(prepared.spec.cid)])
    assert (spec.paradigm, spec.search) == ("competitive", job.search)


@pytest.mark.parametrize("change, message", [
    ({"paradigm": "tournament"}, "paradigm must be one of"),
    ({"search": {"lr": [0.1]}}, "search is for paradigm: competitive"),
    ({"paradigm": "competitive", "search": {"lr": 0.1}}, "must map training keys to lists"),
    ({"paradigm": "competitive", "search": [0.1]}, "must map training keys to lists"),
    ({"paradigm": "competitive", "search": {"lr": [True]}}, "search values are numbers"),
    ({"paradigm": "competitive", "search": {"lr": [-0.1]}}, "non-negative"),
    ({"paradigm": "competitive", "search": {"dropout": [0.1]}}, "not one of"),
    ({"paradigm": "competitive", "search": {"batch_size": [0.5]}}, "not int text"),
    ({"paradigm": "competitive", "workers": {"min": 2, "max": 3}}, "workers.min == workers.max"),
])
def test_invalid_competitive_job_file(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJobDocument, match=message):
        load_job_file(write_job(tmp_path, {**GOOD, **change}))


def test_result_and_status_use_the_winner(capsys: pytest.CaptureFixture[str]) -> None:
    view = {"job_id": "ab" * 32, "state": "completed", "mode": "competitive", "client": "c", "spec_cid": "s",
            "budget": 1, "escrow": 0, "deadline_height": 9, "workers": [], "evaluators": [], "results": {},
            "attestations": {}, "winner": "bafywinner", "checkpoint": None,
            "verdicts": {"bafywinner": {"bcai00": {"accuracy_bps": 9100, "accept": True}},
                         "bafyloser": {"bcai00": {"accuracy_bps": 8000, "accept": True}}}}
    assert get_accepted_model(view) == "bafywinner"
    _show_job(view)
    out = capsys.readouterr().out
    assert "competitive" in out and "bafywinner" in out and "91.00%" in out
