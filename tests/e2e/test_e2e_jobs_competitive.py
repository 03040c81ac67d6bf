"""A competitive job on a real 4-validator devnet (node processes), the agents in this
process talking through the nodes, as in `test_e2e_jobs.py` (whose devnet fixture and
helpers this reuses): three workers, one learning rate each; both evaluators attest every
model; the best accepted model's worker is paid, the rejected one's stake is slashed, and
the CLI reads the winner back and saves it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bcai.crypto import Address
from bcai.training.competitive import CompetitiveResult, compute_worker_choice
from bcai.training.jobflow import prepare_job
from bcai.vm.tensors import decode_tensors
from test_e2e_jobs import BUDGET, TX_FEE, WORKER_STAKE, Net, bcai, net, register_workers, run_job  # noqa: F401

pytestmark = pytest.mark.timeout(600)

SGD_MLP = """
bml: 1
name: e2e-competitive-mlp
model: {template: mlp, input_shape: [64], hidden: [32], num_classes: 10, activation: relu}
training: {optimizer: sgd, lr: 0.01, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 3}
devices: [cpu]
"""
SEARCH = {"lr": ["0.00001", "0.02", "0.2"]}  # near chance (rejected), accepted but worse, best


@pytest.mark.e2e
@pytest.mark.slow
def test_competitive_job_pays_the_best_model_on_a_devnet(net: Net, tmp_path: Path) -> None:  # noqa: F811
    keys = register_workers(net, 3)
    job = prepare_job("e2e-competitive", SGD_MLP, net.train, net.test, rounds=1, local_epochs=2,
                      target_accuracy_bps=2_000, paradigm="competitive", search=SEARCH)
    out = run_job(net, job, keys)
    final = out.final
    assert final["state"] == "completed" and final["mode"] == "competitive" and final["escrow"] == 0
    assert all(isinstance(r, CompetitiveResult) for r in out.workers), out.workers
    addresses = [k.address for k in keys]
    results: list[CompetitiveResult] = out.workers  # type: ignore[assignment]
    by_lr = {r.choice.values["lr"]: (str(a), r) for a, r in zip(addresses, results)}
    assert sorted(by_lr) == sorted(SEARCH["lr"])
    for address, result in zip(addresses, results):
        assert result.choice == compute_worker_choice(SEARCH, addresses, Address.parse(str(address)))
    # both evaluators attested every model, and agree
    assert len(final["verdicts"]) == 3 and all(len(v) == 2 for v in final["verdicts"].values())
    score = {lr: min(v["accuracy_bps"] for v in final["verdicts"][str(r.model_cid)].values())
             for lr, (_, r) in by_lr.items()}
    accepted = {lr for lr, (_, r) in by_lr.items()
                if all(v["accept"] for v in final["verdicts"][str(r.model_cid)].values())}
    assert "0.00001" not in accepted and len(accepted) == 2
    best = max(accepted, key=lambda lr: score[lr])
    assert final["winner"] == str(by_lr[best][1].model_cid)
    loser = next(iter(accepted - {best}))
    assert out.delta(by_lr[best][0]) == BUDGET * 9 // 10 - 2 * TX_FEE
    assert out.delta(by_lr[loser][0]) == -2 * TX_FEE  # accepted but lost: stake back, no pay
    assert out.delta(by_lr["0.00001"][0]) == -WORKER_STAKE - 2 * TX_FEE  # rejected by both: slashed
    for e in net.evaluator_keys:  # 5% split equally; one attest fee per model
        assert out.delta(e.address) == 25_000 - 3 * TX_FEE

    url = net.urls[2]
    status = bcai("job", "status", final["job_id"], "--url", url)
    assert status["winner"] == final["winner"] and status["mode"] == "competitive"
    model_file = tmp_path / "winner.pt"
    got = bcai("job", "result", final["job_id"], "-o", str(model_file), "--url", url)
    assert got["model_cid"] == final["winner"]
    saved, expected = torch.load(model_file), decode_tensors(by_lr[best][1].model)
    assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in expected)
