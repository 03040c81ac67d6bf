"""A competitive job end to end against a real in-process single-validator node (REST API
over uvicorn, the agents' SDK clients on it, the job channel in memory): three workers
each take one learning rate of the spec's search, train their own model and submit it;
the evaluator attests every model; the chain pays the best accepted model's worker,
returns the stake of an accepted-but-losing one and slashes the one it rejected."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bcai.crypto import Address, PrivateKey
from bcai.ledger import Capabilities
from bcai.node import init_home
from bcai.node.config import P2PConfig
from bcai.node.embedded import running_node
from bcai.sdk import Client
from bcai.training.competitive import CompetitiveResult, compute_worker_choice
from bcai.training.data import Dataset, load_digits_splits
from bcai.training.jobflow import MemoryJobChannel, prepare_job, run_client, run_evaluator, run_worker
from test_jobs_relay import call, commit

pytestmark = pytest.mark.timeout(300)

CHAIN = "bcai-competitive"
BUDGET, WORKER_STAKE, REGISTRY_STAKE, FUNDING = 1_000_000, 10_000, 5_000, 100_000
MLP_BML = """
bml: 1
name: competitive-mlp
model: {template: mlp, input_shape: [64], hidden: [32], num_classes: 10, activation: relu}
training: {optimizer: sgd, lr: 0.01, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 3}
devices: [cpu]
"""
# one learning rate per worker: far too small (the model stays near chance: rejected),
# small (accepted, loses), good (wins)
SEARCH = {"lr": ["0.00001", "0.02", "0.2"]}
CAPS = Capabilities(cpu_cores=2, memory_mb=4096, gpu_count=0, gpu_memory_mb=0, bandwidth_mbps=1000, node_type="cpu")


async def enrol(client: Client, url: str, worker_labels: list[str], evaluator_label: str) -> tuple[list[Client], Client]:
    """Fund, from the node's genesis-funded key, and register the job's workers and evaluator."""
    workers = [Client(url, key=PrivateKey.from_label(label)) for label in worker_labels]
    evaluator = Client(url, key=PrivateKey.from_label(evaluator_label))
    for who in (*workers, evaluator):
        await commit(client, await call(client.transfer, who.key.address, FUNDING))
    await commit(evaluator, await call(evaluator.register_evaluator, REGISTRY_STAKE))
    for w in workers:
        await commit(w, await call(w.register_worker, REGISTRY_STAKE, CAPS))
    return workers, evaluator


def test_competitive_job_pays_the_best_hyperparameters_worker(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "competitive", ("validator",), CHAIN, p2p=P2PConfig(port=0))
    train, test = load_digits_splits()
    flat = lambda d: Dataset(d.x.reshape(len(d), 64), d.y)  # noqa: E731 - the MLP takes 64 features
    job = prepare_job("competitive-digits", MLP_BML, flat(train), flat(test), rounds=1, local_epochs=2,
                      target_accuracy_bps=2_000, paradigm="competitive", search=SEARCH)

    async def scenario() -> dict[str, Any]:
        async with running_node(home) as (node, url):
            client = Client(url, key=node.key)
            workers, evaluator = await enrol(client, url, [f"competitor{i}" for i in range(3)], "judge")
            before = {str(c.key.address): await call(c.balance) for c in (*workers, evaluator)}
            hub = MemoryJobChannel().as_factory()
            client_task = asyncio.create_task(run_client(
                client, job, hub, budget=BUDGET, worker_stake=WORKER_STAKE, required_evaluators=1, min_workers=3,
                max_workers=3, deadline_blocks=5_000, timeout_s=240))
            worker_tasks = [asyncio.create_task(run_worker(w, hub, spec_cid=str(job.spec.cid), timeout_s=240))
                            for w in workers]
            evaluations = await run_evaluator(evaluator, hub, timeout_s=240)
            final = await client_task
            results = await asyncio.gather(*worker_tasks)
            final = await call(client.job, final["job_id"])  # settled: stakes back, escrow zero
            after = {str(c.key.address): await call(c.balance) for c in (*workers, evaluator)}
            for c in (client, *workers, evaluator):
                c.close()
            return {"final": final, "results": results, "evaluations": evaluations, "before": before,
                    "after": after, "workers": [w.key.address for w in workers], "evaluator": evaluator.key.address}

    out = asyncio.run(scenario())
    final, results = out["final"], out["results"]
    assert final["state"] == "completed" and final["mode"] == "competitive" and final["escrow"] == 0
    assert all(isinstance(r, CompetitiveResult) for r in results)
    workers: list[Address] = out["workers"]
    # each worker took the grid point of its rank by address, and trained a model of its own
    for address, result in zip(workers, results):
        assert result.choice == compute_worker_choice(SEARCH, workers, address)
        assert final["results"][str(address)]["model_cid"] == str(result.model_cid)
    assert sorted(r.choice.values["lr"] for r in results) == sorted(SEARCH["lr"])
    by_lr = {r.choice.values["lr"]: r for r in results}
    verdicts = {cid: next(iter(v.values())) for cid, v in final["verdicts"].items()}
    assert len(verdicts) == 3
    accuracy = {lr: verdicts[str(r.model_cid)]["accuracy_bps"] for lr, r in by_lr.items()}
    assert not verdicts[str(by_lr["0.00001"].model_cid)]["accept"]  # near chance: rejected
    best_lr = max(accuracy, key=lambda lr: accuracy[lr])
    assert verdicts[str(by_lr[best_lr].model_cid)]["accept"] and best_lr != "0.00001"
    assert final["winner"] == str(by_lr[best_lr].model_cid)
    # pay: 90% to the winner; stakes back but for the rejected model's worker; fees: volunteer + submit
    address_of = {lr: str(workers[results.index(r)]) for lr, r in by_lr.items()}
    delta = {lr: out["after"][a] - out["before"][a] for lr, a in address_of.items()}
    loser = next(lr for lr in SEARCH["lr"] if lr not in (best_lr, "0.00001"))
    assert delta[best_lr] == BUDGET * 9 // 10 - 2
    assert delta[loser] == -2, accuracy
    assert delta["0.00001"] == -WORKER_STAKE - 2
    evaluator = str(out["evaluator"])
    assert out["after"][evaluator] - out["before"][evaluator] == BUDGET * 5 // 100 - 3  # three attests
    assert len(out["evaluations"]) == 3
