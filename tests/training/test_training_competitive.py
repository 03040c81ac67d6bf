"""Competitive jobs' pure core: the search grid, each worker's grid point, the BML it trains,
and the job spec's `search` checks."""

from __future__ import annotations

import pytest
import yaml

from bcai.crypto import Cid, PrivateKey
from bcai.errors import InvalidJobDocument
from bcai.training.competitive import apply_choice, compute_search_grid, compute_worker_choice
from bcai.training.spec import JobSpec
from bcai.vm.frontends.bml import from_bml

CID = str(Cid.of(b"split"))
BML = """
bml: 1
name: grid
model: {template: mlp, input_shape: [64], hidden: [8], num_classes: 10}
training: {optimizer: sgd, lr: 0.01, epochs: 1, batch_size: 32, seed: 3}
"""


def spec(**kw):
    return JobSpec(name="n", bml=BML, train_cid=CID, test_cid=CID, train_samples=10, **kw)


def test_grid_is_the_cartesian_product_in_key_order():
    grid = compute_search_grid({"momentum": ["0.0", "0.9"], "lr": ["0.1", "0.01", "0.001"]})
    assert len(grid) == 6
    assert grid[:3] == [{"lr": "0.1", "momentum": "0.0"}, {"lr": "0.1", "momentum": "0.9"},
                        {"lr": "0.01", "momentum": "0.0"}]
    assert compute_search_grid({}) == [{}]


def test_workers_take_grid_points_by_rank_and_wrap_with_another_seed():
    keys = [PrivateKey.from_label(f"w{i}").address for i in range(5)]
    search = {"lr": ["0.1", "0.01", "0.001"]}
    ranked = sorted(keys, key=lambda a: a.raw)
    choices = [compute_worker_choice(search, list(reversed(keys)), a) for a in ranked]
    assert [c.rank for c in choices] == [0, 1, 2, 3, 4]
    assert [c.values["lr"] for c in choices] == ["0.1", "0.01", "0.001", "0.1", "0.01"]
    assert [c.seed_offset for c in choices] == [0, 0, 0, 1, 1]
    with pytest.raises(InvalidJobDocument, match="not a worker"):
        compute_worker_choice(search, keys[:2], keys[4])


def test_the_choice_is_applied_to_the_bml():
    keys = [PrivateKey.from_label(f"w{i}").address for i in range(2)]
    last = max(keys, key=lambda a: a.raw)
    choice = compute_worker_choice({"lr": ["0.5"], "batch_size": ["16"]}, keys, last)
    text = apply_choice(BML, choice)
    training = yaml.safe_load(text)["training"]
    assert (training["lr"], training["batch_size"], training["seed"]) == (0.5, 16, 4)  # rank 1 past a 1-point grid
    program = from_bml(text)
    assert (program.training.batch_size, program.seed) == (16, 4)
    only_lr = compute_worker_choice({"lr": ["0.5"]}, keys[:1], keys[0])
    assert from_bml(apply_choice(BML, only_lr)).to_obj() != from_bml(BML).to_obj()  # the optimizer step differs


def test_competitive_spec_round_trips_and_a_federated_spec_keeps_its_encoding():
    competitive = spec(paradigm="competitive", search={"lr": ["0.1", "0.01"]})
    assert JobSpec.from_bytes(competitive.to_bytes()) == competitive
    federated = spec()
    assert "search" not in federated.to_bytes().decode("latin-1")
    assert JobSpec.from_bytes(federated.to_bytes()) == federated
    assert JobSpec.from_bytes(spec(paradigm="competitive").to_bytes()).search == {}  # seeds differ only


@pytest.mark.parametrize("search, message", [
    ({"dropout": ["0.1"]}, "not one of"),
    ({"lr": []}, "list of"),
    ({"lr": "0.1"}, "list of"),
    ({"lr": [0.1]}, "not float text"),
    ({"lr": ["fast"]}, "not float text"),
    ({"lr": ["nan"]}, "finite"),
    ({"lr": ["-0.1"]}, "non-negative"),
    ({"batch_size": ["1.5"]}, "not int text"),
    ({"lr": ["0.1", "0.1"]}, "repeats"),
    ({"lr": [str(i) for i in range(64)], "momentum": [str(i) for i in range(32)]}, "grid points"),
    (["lr"], "must map"),
])
def test_invalid_search(search, message):
    with pytest.raises(InvalidJobDocument, match=message):
        spec(paradigm="competitive", search=search)


def test_invalid_search_on_a_federated_job_and_unknown_paradigm():
    with pytest.raises(InvalidJobDocument, match="competitive jobs only"):
        spec(search={"lr": ["0.1"]})
    with pytest.raises(InvalidJobDocument, match="paradigm"):
        spec(paradigm="tournament")


def test_invalid_spec_bytes_with_an_empty_or_malformed_search():
    from bcai.encoding import decode, encode

    value = decode(spec(paradigm="competitive", search={"lr": ["0.1"]}).to_bytes())
    with pytest.raises(InvalidJobDocument, match="search at its default is left out"):
        JobSpec.from_bytes(encode({**value, "search": {}}))
    with pytest.raises(InvalidJobDocument, match="not float text"):
        JobSpec.from_bytes(encode({**value, "search": {"lr": [1]}}))
