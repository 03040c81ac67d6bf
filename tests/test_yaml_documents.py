"""YAML from people and from the chain: hostile documents fail with the caller's clear error.

A job's BML travels on chain, so every worker parses documents written by strangers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bcai.cli.job import load_job_file
from bcai.encoding.documents import MAX_DEPTH, load_yaml
from bcai.errors import InvalidBml, InvalidJobDocument
from bcai.training.competitive import WorkerChoice, apply_choice
from bcai.vm.frontends.bml import parse_bml

GOOD_BML = "bml: 1\nmodel: {template: mlp, input_shape: [4], num_classes: 2}\ntraining: {epochs: 1, batch_size: 2}\n"
DEEP_LIST = "bml: 1\nmodel: " + "[" * 50_000 + "]" * 50_000 + "\n"
DEEP_MAP = "bml: 1\nmodel: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
PYTHON_TAG = "bml: !!python/object/apply:os.system ['echo owned']\n"


def test_plain_documents_load_as_safe_load_does() -> None:
    assert load_yaml(GOOD_BML) == yaml.safe_load(GOOD_BML)
    assert load_yaml("- " * (MAX_DEPTH - 1) + "1") == yaml.safe_load("- " * (MAX_DEPTH - 1) + "1")


@pytest.mark.parametrize("text, words", [
    (DEEP_LIST, "nested more than"), (DEEP_MAP, "nested more than"), ("- " * (MAX_DEPTH + 1) + "1", "nested more than"),
    (LAUGHS, "aliases are not allowed"), (PYTHON_TAG, "could not determine a constructor"),
])
def test_hostile_yaml_is_a_yaml_error(text: str, words: str) -> None:
    with pytest.raises(yaml.YAMLError, match=words):
        load_yaml(text)


@pytest.mark.parametrize("text", [DEEP_LIST, DEEP_MAP, LAUGHS, PYTHON_TAG])
def test_hostile_bml_is_invalid_bml(text: str) -> None:
    with pytest.raises(InvalidBml, match="not valid YAML"):
        parse_bml(text)


@pytest.mark.parametrize("text", [DEEP_LIST, LAUGHS, "- just\n- a list\n", "42\n"])
def test_a_competitive_worker_refuses_a_hostile_job_document(text: str) -> None:
    choice = WorkerChoice(rank=0, grid_index=0, values={"lr": "0.01"}, seed_offset=1)
    with pytest.raises(InvalidBml):
        apply_choice(text, choice)
    applied = load_yaml(apply_choice(GOOD_BML, choice))
    assert applied["training"]["lr"] == 0.01 and applied["training"]["seed"] == 1


@pytest.mark.parametrize("text", [DEEP_LIST, LAUGHS])
def test_a_hostile_job_file_is_invalid_job_document(tmp_path: Path, text: str) -> None:
    (tmp_path / "job.yaml").write_text(text)
    with pytest.raises(InvalidJobDocument, match="not valid YAML"):
        load_job_file(tmp_path / "job.yaml")
