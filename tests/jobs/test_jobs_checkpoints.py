"""Round checkpoints on chain: a federated job on a real in-process node records each
round's aggregate (by the lowest-address live worker), `GET /jobs/{id}` shows the latest,
and a worker resumes from it (bitwise the same model as an uninterrupted run)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bcai.crypto import CODEC_DAG_CBOR, Address, Cid, PrivateKey
from bcai.node import init_home
from bcai.node.config import P2PConfig
from bcai.node.embedded import running_node
from bcai.sdk import Client
from bcai.training.checkpoints import is_checkpoint_recorder, load_checkpoint
from bcai.training.data import load_digits_splits
from bcai.training.federated import FederatedResult, MemoryChannel, RoundReport, UpdateBoard, run_federated_worker
from bcai.training.jobflow import MemoryJobChannel, prepare_job, run_client, run_evaluator, run_worker
from bcai.vm.frontends.bml import from_bml
from bcai.vm.interpreter import VM
from bcai.vm.tensors import encode_tensors
from test_jobs_competitive import enrol
from test_jobs_relay import call

pytestmark = pytest.mark.timeout(300)

CHAIN = "bcai-checkpoints"
# plain SGD, no momentum and no dropout: the parameters are the whole training state, so a
# resumed run is bitwise an uninterrupted one
SGD_MLP = """
bml: 1
name: checkpoint-mlp
model: {template: mlp, input_shape: [1, 8, 8], hidden: [16], num_classes: 10, activation: relu}
training: {optimizer: sgd, lr: 0.1, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 5}
devices: [cpu]
"""


def test_recorder_is_the_lowest_live_address() -> None:
    keys = sorted((PrivateKey.from_label(f"r{i}").address for i in range(3)), key=lambda a: a.raw)
    report = RoundReport(0, [str(k) for k in reversed(keys)], "cid")
    assert [is_checkpoint_recorder(report, k) for k in keys] == [True, False, False]
    assert not is_checkpoint_recorder(RoundReport(0, [], "cid"), keys[0])


def test_federated_job_commits_round_checkpoints_and_a_worker_resumes_from_them(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "checkpoints", ("validator",), CHAIN, p2p=P2PConfig(port=0))
    train, test = load_digits_splits()
    job = prepare_job("checkpointed", SGD_MLP, train, test, rounds=3, local_epochs=1, target_accuracy_bps=3_000)
    reports: dict[str, list[RoundReport]] = {}

    async def scenario() -> dict[str, Any]:
        async with running_node(home) as (node, url):
            client = Client(url, key=node.key)
            workers, evaluator = await enrol(client, url, ["fl0", "fl1"], "checker")
            hub = MemoryJobChannel().as_factory()
            client_task = asyncio.create_task(run_client(
                client, job, hub, budget=100_000, worker_stake=1_000, required_evaluators=1, min_workers=2,
                max_workers=2, deadline_blocks=5_000, timeout_s=240))
            worker_tasks = [asyncio.create_task(run_worker(
                w, hub, spec_cid=str(job.spec.cid), timeout_s=240,
                on_round=lambda r, who=str(w.key.address): reports.setdefault(who, []).append(r)))
                for w in workers]
            await run_evaluator(evaluator, hub, timeout_s=240)
            final = await client_task
            results = await asyncio.gather(*worker_tasks)
            view = await call(client.job, final["job_id"])
            # a worker resuming now (a fresh session) loads round 1's checkpoint and starts at round 2
            session = VM(deterministic=True).load(from_bml(SGD_MLP))
            start = await call(load_checkpoint, workers[0], view, session)
            loaded = session.get_parameters()
            for c in (client, *workers, evaluator):
                c.close()
            return {"view": view, "results": results, "workers": [w.key.address for w in workers],
                    "start": start, "loaded": loaded}

    out = asyncio.run(scenario())
    view = out["view"]
    assert view["state"] == "completed"
    recorder = min(out["workers"], key=lambda a: a.raw)
    rounds = reports[str(recorder)]
    # rounds 0 and 1 recorded (the last round's model is the submitted result), round 1 is the latest
    assert view["checkpoint"] == {"round": 1, "cid": rounds[1].checkpoint, "worker": str(recorder)}
    assert out["start"] == 2
    assert str(Cid.of(encode_tensors(out["loaded"]), CODEC_DAG_CBOR)) == rounds[1].checkpoint
    # resuming from round 1's checkpoint gives bitwise the model every worker submitted
    resumed = resume_from(train, out["workers"], out["loaded"], start_round=2, rounds=3)
    assert all(isinstance(r, FederatedResult) for r in out["results"])
    assert {str(r.model_cid) for r in resumed} == {str(out["results"][0].model_cid)}
    assert [r.round_index for r in resumed[0].rounds] == [2]


def resume_from(train: Any, addresses: list[Address], params: Any, *, start_round: int, rounds: int) -> list[Any]:
    """Run the job's workers again from a checkpoint (their keys are the labelled ones)."""
    program = from_bml(SGD_MLP)
    keys = {PrivateKey.from_label(f"fl{i}").address: PrivateKey.from_label(f"fl{i}") for i in range(2)}
    board = UpdateBoard(CHAIN, b"\x00" * 32, addresses)

    async def one(address: Address) -> FederatedResult:
        session = VM(deterministic=True).load(program)
        session.set_parameters(params)
        return await run_federated_worker(
            key=keys[address], chain_id=CHAIN, job_id=b"\x00" * 32, workers=addresses, session=session, data=train,
            rounds=rounds, local_epochs=1, rule_name="fedavg", channel=MemoryChannel(board), seed=program.seed,
            start_round=start_round)

    async def main() -> list[FederatedResult]:
        return list(await asyncio.gather(*[one(a) for a in addresses]))

    return asyncio.run(main())
