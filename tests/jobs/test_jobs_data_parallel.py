"""A data-parallel job through the whole job flow on a real in-process single-validator node
(REST API on a free port): the client posts a `data_parallel` spec, three workers volunteer,
rendezvous on the job channel (in memory here), train in their own rank processes, all
submit the same model, the evaluator accepts it and the ledger pays 90% by samples."""

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
from bcai.training.data import Dataset, load_digits_splits
from bcai.training.dp_job import DataParallelJobResult
from bcai.training.jobflow import MemoryJobChannel, prepare_job, run_client, run_evaluator, run_worker

pytestmark = pytest.mark.timeout(300)

CHAIN = "bcai-dpjob"
BUDGET, STAKE = 1_000_000, 1_000
MLP = """
bml: 1
name: dp-job-mlp
model: {template: mlp, input_shape: [64], hidden: [32], num_classes: 10, activation: relu}
training: {optimizer: adam, lr: 0.01, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 3}
devices: [cpu]
"""
CAPS = Capabilities(cpu_cores=1, memory_mb=512, gpu_count=0, gpu_memory_mb=0, bandwidth_mbps=10, node_type="cpu")


async def commit(client: Client, send: Any, *args: Any) -> dict[str, Any]:
    tx = await asyncio.to_thread(send, *args)
    return await asyncio.to_thread(client.wait_for_tx, tx, 30.0)


def test_data_parallel_job_completes_with_one_model_from_every_worker(tmp_path: Path) -> None:
    init_home(tmp_path / "node", "dp-job", ("validator",), CHAIN, p2p=P2PConfig(port=0))
    train, test = load_digits_splits()
    flat = lambda d: Dataset(d.x.reshape(len(d), 64), d.y)  # noqa: E731 - the MLP takes 64 features
    job = prepare_job("dp-job", MLP, flat(train), flat(test), rounds=1, local_epochs=3, target_accuracy_bps=9_000,
                      paradigm="data_parallel", checkpoint_every=10)
    assert job.spec.paradigm == "data_parallel" and job.spec.checkpoint_every == 10

    async def scenario() -> tuple[Any, ...]:
        async with running_node(tmp_path / "node") as (node, url):
            client = Client(url, key=node.key)
            workers = [Client(url, key=PrivateKey.from_label(f"dp-job-worker-{i}")) for i in range(3)]
            evaluator = Client(url, key=PrivateKey.from_label("dp-job-evaluator"))
            for who in [*workers, evaluator]:
                await commit(client, client.transfer, who.key.address, 100_000)
            await commit(evaluator, evaluator.register_evaluator, STAKE)
            for w in workers:
                await commit(w, w.register_worker, STAKE, CAPS)
            before = {str(c.key.address): await asyncio.to_thread(c.balance) for c in workers}
            hub = MemoryJobChannel()
            channels = hub.as_factory()
            events: list[tuple[str, dict[str, Any]]] = []
            posted: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            def on_client(kind: str, data: dict[str, Any]) -> None:
                if kind == "posted" and not posted.done():
                    posted.set_result(data["job_id"])

            client_task = asyncio.create_task(run_client(
                client, job, channels, budget=BUDGET, worker_stake=STAKE, required_evaluators=1, min_workers=3,
                max_workers=3, deadline_blocks=5_000, timeout_s=240, on_event=on_client))
            worker_tasks = [asyncio.create_task(run_worker(
                w, channels, spec_cid=str(job.spec.cid), timeout_s=240, round_timeout_s=30,
                on_event=lambda kind, data: events.append((kind, data)))) for w in workers]
            job_id = await asyncio.wait_for(posted, 60)
            evaluation = asyncio.create_task(run_evaluator(evaluator, channels, job_id=job_id, timeout_s=240))
            await client_task
            results = await asyncio.gather(*worker_tasks, return_exceptions=True)
            await evaluation
            final = await asyncio.to_thread(client.job, job_id)
            after = {str(c.key.address): await asyncio.to_thread(c.balance) for c in workers}
            for c in [client, *workers, evaluator]:
                c.close()
            return final, results, before, after, events

    final, results, before, after, events = asyncio.run(scenario())
    assert all(isinstance(r, DataParallelJobResult) for r in results), results
    assert final["state"] == "completed", final
    model_cid = str(results[0].model_cid)
    assert {r["model_cid"] for r in final["results"].values()} == {model_cid}
    assert all(a["accept"] and a["accuracy_bps"] >= 9_000 for a in final["attestations"].values())
    samples = {w: r["samples"] for w, r in final["results"].items()}
    assert sum(samples.values()) == 1437 * 3  # every example of every epoch, once, across the ranks
    # the leader (lowest address) commits every checkpoint on chain, the global step as its round
    announced = [d for k, d in events if k == "dp_checkpoint"]
    recorded = [d for k, d in events if k == "dp_checkpoint_recorded"]
    assert [d["step"] for d in announced] == [d["step"] for d in recorded] == list(range(10, 136, 10))
    leader = min(samples, key=lambda w: Address.parse(w).raw)
    assert {d["worker"] for d in recorded} == {leader}
    assert final["checkpoint"]["round"] == 130 and final["checkpoint"]["cid"] == recorded[-1]["cid"]
    for w, got in samples.items():  # the ledger's rule, unchanged: 90% split by samples; 2 tx fees each,
        fees = 2 + (len(recorded) if w == leader else 0)  # and the leader's checkpoint records
        assert after[w] - before[w] == BUDGET * 9 // 10 * got // sum(samples.values()) - fees


ROOT = Path(__file__).resolve().parents[2]


def test_the_example_data_parallel_job_file_loads() -> None:
    from bcai.cli.job import load_job_file

    job = load_job_file(ROOT / "examples" / "jobs" / "digits_data_parallel_job.yaml")
    assert (job.paradigm, job.checkpoint_every, job.rounds * job.local_epochs) == ("data_parallel", 20, 16)
    assert (job.min_workers, job.max_workers) == (3, 3)


@pytest.mark.parametrize("change, message", [
    ({"paradigm": "tournament"}, "paradigm must be one of"),
    ({"paradigm": "federated"}, "checkpoint_every is for data_parallel"),
    ({"paradigm": 3}, "paradigm must be one of"),
    ({"checkpoint_every": -1}, "checkpoint_every"),
    ({"checkpoint_every": 2.5}, "checkpoint_every"),
])
def test_invalid_data_parallel_job_file_fields(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    import yaml

    from bcai.cli.job import load_job_file
    from bcai.errors import InvalidJobDocument

    (tmp_path / "model.yaml").write_text(MLP)
    doc = {"bml": "model.yaml", "dataset": "digits", "budget": 1000, "rounds": 1, "local_epochs": 2,
           "target_accuracy": 0.5, "evaluators": 1, "workers": {"min": 1, "max": 2}, "worker_stake": 10,
           "deadline_blocks": 100, "paradigm": "data_parallel", "checkpoint_every": 5}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(doc))
    assert load_job_file(tmp_path / "job.yaml").paradigm == "data_parallel"
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({**doc, **change}))
    with pytest.raises(InvalidJobDocument, match=message):
        load_job_file(tmp_path / "job.yaml")


def test_the_job_inbox_keeps_other_messages_but_hellos_for_the_paradigm() -> None:
    from bcai.training.dp_job import DpMessage
    from bcai.training.jobflow import JobInbox, KeyRelease, make_hello

    client, worker = PrivateKey.from_label("inbox-client"), PrivateKey.from_label("inbox-worker")
    job = bytes(range(32))
    inbox = JobInbox(CHAIN, job, client.address, [worker.address])
    join = DpMessage.create(worker, CHAIN, "join", job, 0).to_bytes()
    release = KeyRelease.create(client, CHAIN, job, "train", [worker.public_key], bytes(32)).to_bytes()
    for data in (make_hello(worker.public_key), release, join, b"\xffgarbage"):
        inbox.offer(data)
    assert "train" in inbox.keys and inbox.unrouted == [join, b"\xffgarbage"]
