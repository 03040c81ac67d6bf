"""Training jobs on a real 4-validator devnet (node processes on 127.0.0.1), with the client,
worker and evaluator agents in this process, each with its own key and SDK `Client` on a
node API, talking to each other through the nodes (the job's gossip topic), as in the demo.

One module-scoped devnet serves every test; two evaluators are registered once (the
evaluator pool is then exactly them, so every job draws both). Each test registers fresh
workers and posts a job with its own name (so workers pick the right spec). The model is a
tiny MLP on the digits (2 rounds x 1 epoch), so a job takes seconds.

Short tier (in `make test`): the job completes and pays to the token, and the `bcai job`
CLI reads it back. Slow tier (`-m slow`): lazy, poisoning and dying workers, expiry.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from bcai.crypto import CODEC_DAG_CBOR, Address, Cid, PrivateKey
from bcai.crypto.keystore import KeyStore
from bcai.errors import BcaiError
from bcai.ledger import Capabilities
from bcai.node import devnet
from bcai.sdk import Client
from bcai.training.data import Dataset, load_digits_splits
from bcai.training.federated import FederatedResult, RoundReport
from bcai.training.jobflow import PreparedJob, http_channels, prepare_job, run_client, run_evaluator, run_worker
from bcai.vm.tensors import decode_tensors

pytestmark = pytest.mark.timeout(600)

BUDGET = 1_000_000
WORKER_STAKE = 10_000
REGISTRY_STAKE = 5_000
FUNDING = 100_000
TX_FEE = 1  # the devnet's min_fee; every agent tx pays it
MLP_BML = """
bml: 1
name: e2e-mlp
model: {template: mlp, input_shape: [64], hidden: [32], num_classes: 10, activation: relu}
training: {optimizer: adam, lr: 0.01, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 3}
devices: [cpu]
"""
CAPS = Capabilities(cpu_cores=2, memory_mb=4096, gpu_count=0, gpu_memory_mb=0, bandwidth_mbps=1000, node_type="cpu")


@dataclass
class Net:
    home: Path
    urls: list[str]
    client_key: PrivateKey
    evaluator_keys: list[PrivateKey]
    train: Dataset
    test: Dataset


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("jobs-devnet")
    nodes = devnet.up(home, 4, fresh=True, wait_s=120)
    try:
        urls = [n.api_url for n in nodes]
        client_key = KeyStore(home).load("client")
        evaluator_keys = [PrivateKey.generate() for _ in range(2)]
        with Client(urls[0], key=client_key) as client:
            fund(client, evaluator_keys)
        for i, key in enumerate(evaluator_keys):
            with Client(urls[(i + 2) % 4], key=key) as evaluator:
                evaluator.wait_for_tx(evaluator.register_evaluator(REGISTRY_STAKE), 60)
        train, test = load_digits_splits()
        flat = lambda d: Dataset(d.x.reshape(len(d), 64), d.y)  # noqa: E731 - the MLP takes 64 features
        yield Net(home, urls, client_key, evaluator_keys, flat(train), flat(test))
    finally:
        devnet.down(home)


def fund(client: Client, keys: list[PrivateKey]) -> None:
    for h in [client.transfer(k.address, FUNDING) for k in keys]:
        client.wait_for_tx(h, 60)


def register_workers(net: Net, n: int) -> list[PrivateKey]:
    keys = [PrivateKey.generate() for _ in range(n)]
    with Client(net.urls[0], key=net.client_key) as client:
        fund(client, keys)
    clients = [Client(net.urls[(i + 1) % 4], key=k) for i, k in enumerate(keys)]
    for c, h in [(c, c.register_worker(REGISTRY_STAKE, CAPS)) for c in clients]:
        c.wait_for_tx(h, 60)
        c.close()
    return keys


@dataclass
class Outcome:
    final: dict[str, Any]
    workers: list[FederatedResult | None | BaseException]
    reports: dict[str, list[RoundReport]] = field(default_factory=dict)  # worker -> its round reports
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    treasury_delta: int = 0

    def delta(self, address: Any) -> int:
        return self.after[str(address)] - self.before[str(address)]


def run_job(net: Net, job: PreparedJob, worker_keys: list[PrivateKey], *, min_workers: int = 3,
            deadline_blocks: int = 2_000, round_timeout_s: float = 60.0,
            worker_options: dict[int, dict[str, Any]] | None = None,
            cancel_after_round: dict[int, int] | None = None, grace_s: float = 10.0) -> Outcome:
    """Run the client, the given workers and both evaluators to the job's end."""
    return asyncio.run(_run_job(net, job, worker_keys, min_workers, deadline_blocks, round_timeout_s,
                                worker_options or {}, cancel_after_round or {}, grace_s))


async def _run_job(net: Net, job: PreparedJob, worker_keys: list[PrivateKey], min_workers: int,
                   deadline_blocks: int, round_timeout_s: float, worker_options: dict[int, dict[str, Any]],
                   cancel_after_round: dict[int, int], grace_s: float) -> Outcome:
    client = Client(net.urls[0], key=net.client_key)
    workers = [Client(net.urls[(i + 1) % 4], key=k) for i, k in enumerate(worker_keys)]
    evaluators = [Client(net.urls[(i + 2) % 4], key=k) for i, k in enumerate(net.evaluator_keys)]
    everyone = [client, *workers, *evaluators]
    before = {str(c.key.address): c.balance() for c in everyone}
    treasury_before = int(client.status()["treasury"])
    posted: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    reports: dict[str, list[RoundReport]] = {str(k.address): [] for k in worker_keys}

    def on_client_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "posted" and not posted.done():
            posted.set_result(data["job_id"])

    worker_tasks: list[asyncio.Task[Any]] = []

    def on_round_of(i: int) -> Callable[[RoundReport], None]:
        def on_round(report: RoundReport) -> None:
            reports[str(worker_keys[i].address)].append(report)
            if cancel_after_round.get(i) == report.round_index:
                worker_tasks[i].cancel()  # the worker dies right after this round
        return on_round

    client_task = asyncio.create_task(run_client(
        client, job, http_channels, budget=BUDGET, worker_stake=WORKER_STAKE, required_evaluators=2,
        min_workers=min_workers, max_workers=len(worker_keys) or 1, deadline_blocks=deadline_blocks,
        timeout_s=240, on_event=on_client_event))
    for i, w in enumerate(workers):
        worker_tasks.append(asyncio.create_task(run_worker(
            w, http_channels, spec_cid=str(job.spec.cid), timeout_s=240, round_timeout_s=round_timeout_s,
            on_round=on_round_of(i), **worker_options.get(i, {}))))
    job_id = await asyncio.wait_for(posted, 120)
    for e in evaluators:  # the evaluators' nodes may commit the job a moment after the client's
        await asyncio.wait_for(asyncio.to_thread(wait_for_job, e, job_id), 60)
    evaluator_tasks = [asyncio.create_task(run_evaluator(e, http_channels, job_id=job_id, timeout_s=240, grace_s=grace_s))
                       for e in evaluators] if worker_keys else []
    final = await client_task
    results = await asyncio.gather(*worker_tasks, return_exceptions=True)
    for outcome in await asyncio.gather(*evaluator_tasks, return_exceptions=True):
        assert not isinstance(outcome, BaseException), outcome
    final = client.job(job_id)  # the final record (stakes returned, escrow zero)
    after = {str(c.key.address): c.balance() for c in everyone}
    treasury_delta = int(client.status()["treasury"]) - treasury_before
    for c in everyone:
        c.close()
    return Outcome(final, list(results), reports, before, after, treasury_delta)


def wait_for_job(client: Client, job_id: str) -> None:
    while True:
        try:
            client.job(job_id)
            return
        except BcaiError:
            time.sleep(0.1)


def wait_for_new_job(url: str, known: set[str]) -> dict[str, Any]:
    """The first job posted that is not in `known` (the one the CLI posts)."""
    with Client(url) as client:
        while True:
            fresh = [j for j in client.jobs() if j["job_id"] not in known]
            if fresh:
                return fresh[0]
            time.sleep(0.2)


def make_job(net: Net, name: str, *, rounds: int = 2, local_epochs: int = 1, aggregation: str = "fedavg",
             target_bps: int = 5_000) -> PreparedJob:
    return prepare_job(name, MLP_BML, net.train, net.test, rounds=rounds, local_epochs=local_epochs,
                       aggregation=aggregation, target_accuracy_bps=target_bps)


def expected_worker_pay(results: dict[str, dict[str, Any]], paid: list[str]) -> dict[str, int]:
    total = sum(results[a]["samples"] for a in paid)
    return {a: BUDGET * 9 // 10 * results[a]["samples"] // total for a in paid}


def uploaded_cid(result: Any) -> str:
    """The CID a worker submitted: its model's canonical tensor bytes under the dag-cbor
    codec, which is also the federated result's `model_cid` (the last round checkpoint)."""
    assert isinstance(result, FederatedResult), result
    assert str(Cid.of(result.model, CODEC_DAG_CBOR)) == str(result.model_cid)
    return str(result.model_cid)


def checkpoint_fees(out: Outcome, worker: str, rounds: int) -> int:
    """The fees `worker` paid recording round checkpoints: the lowest live address of each
    round but the last records it (`bcai.training.checkpoints`)."""
    by_round = {r.round_index: r for reports in out.reports.values() for r in reports}
    return sum(TX_FEE for i, r in by_round.items()
               if i < rounds - 1 and min(r.workers, key=lambda w: Address.parse(w).raw) == worker)


def bcai(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bcai", *args, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


# --- short tier ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_job_completes_and_pays_to_the_token_and_the_cli_reads_it(net: Net, tmp_path: Path) -> None:
    keys = register_workers(net, 3)
    job = make_job(net, "e2e-payouts")
    out = run_job(net, job, keys)
    final = out.final
    assert final["state"] == "completed" and final["escrow"] == 0
    assert all(isinstance(r, FederatedResult) for r in out.workers), out.workers
    model_cid = uploaded_cid(out.workers[0])
    assert {uploaded_cid(r) for r in out.workers} == {model_cid}
    assert {a["model_cid"] for a in final["attestations"].values()} == {model_cid}
    assert all(a["accept"] and a["accuracy_bps"] >= 5_000 for a in final["attestations"].values())
    workers = [str(k.address) for k in keys]
    # samples: each of 3 workers trains a third of the 1437 training samples, 2 rounds x 1 epoch
    assert [final["results"][w]["samples"] for w in workers] == [2 * 479] * 3
    pay = expected_worker_pay(final["results"], workers)
    assert pay == {w: 300_000 for w in workers}
    for w in workers:  # 90% split by samples; the stake comes back; volunteer + submit (+ checkpoints) paid a fee each
        assert out.delta(w) == pay[w] - 2 * TX_FEE - checkpoint_fees(out, w, 2)
    # round 0's checkpoint is on chain, recorded by the lowest address (round 1's model is the result)
    round0 = out.reports[workers[0]][0]
    assert final["checkpoint"] == {"round": 0, "cid": round0.checkpoint,
                                   "worker": min(round0.workers, key=lambda w: Address.parse(w).raw)}
    for e in net.evaluator_keys:  # 5% split equally; one attest fee
        assert out.delta(e.address) == 25_000 - TX_FEE
    assert out.treasury_delta == BUDGET - sum(pay.values()) - 50_000 == 50_000  # 5% (+ rounding)
    # the client paid the budget into escrow plus the 1% network fee (to the validators) and one tx fee
    assert out.delta(net.client_key.address) == -(BUDGET + BUDGET // 100 + TX_FEE)

    # the CLI reads the job back from the devnet
    url = net.urls[1]
    listed = bcai("job", "list", "--url", url)
    assert final["job_id"] in [j["job_id"] for j in listed["jobs"]]
    status = bcai("job", "status", final["job_id"], "--url", url)
    assert status["state"] == "completed" and status["results"] == final["results"]
    model_file = tmp_path / "model.pt"
    got = bcai("job", "result", final["job_id"], "-o", str(model_file), "--url", url)
    assert got["model_cid"] == model_cid and Path(got["output"]) == model_file
    saved = torch.load(model_file)
    expected = decode_tensors(out.workers[0].model)  # type: ignore[union-attr]
    assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in expected)


# --- slow tier -----------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_lazy_worker_is_slashed_and_unpaid(net: Net) -> None:
    keys = register_workers(net, 3)
    job = make_job(net, "e2e-lazy")
    out = run_job(net, job, keys, round_timeout_s=8, worker_options={2: {"lazy": True}})
    final = out.final
    assert final["state"] == "completed"
    honest, lazy = [str(k.address) for k in keys[:2]], str(keys[2].address)
    honest_cid = uploaded_cid(out.workers[0])
    assert final["results"][lazy]["model_cid"] != honest_cid
    assert {final["results"][w]["model_cid"] for w in honest} == {honest_cid}
    assert {a["model_cid"] for a in final["attestations"].values()} == {honest_cid}
    # the honest pair dropped the lazy worker in round 0 (it never published an update)
    assert all(len(out.reports[w]) == 2 and all(r.workers == sorted(honest) for r in out.reports[w]) for w in honest)
    pay = expected_worker_pay(final["results"], honest)
    assert sum(pay.values()) >= 900_000 - 1
    for w in honest:
        assert out.delta(w) == pay[w] - 2 * TX_FEE - checkpoint_fees(out, w, 2)
    assert out.delta(lazy) == -WORKER_STAKE - 2 * TX_FEE  # unpaid, and its job stake is gone
    with Client(net.urls[0]) as client:
        assert client.account(lazy)["worker"]["slash_count"] == 1
        assert all(client.account(w)["worker"]["slash_count"] == 0 for w in honest)
    # the treasury took the 5% share, the rounding remainder and the slashed stake
    assert out.treasury_delta == BUDGET - sum(pay.values()) - 50_000 + WORKER_STAKE


@pytest.mark.e2e
@pytest.mark.slow
def test_poisoning_worker_is_flagged_and_median_still_reaches_the_target(net: Net) -> None:
    keys = register_workers(net, 3)
    target = 8_500
    job = make_job(net, "e2e-poison", rounds=3, local_epochs=2, aggregation="median", target_bps=target)

    def poison(params: dict[str, torch.Tensor], round_index: int) -> dict[str, torch.Tensor]:
        return {k: v * -20.0 for k, v in params.items()}

    out = run_job(net, job, keys, worker_options={0: {"transform": poison}})
    final = out.final
    assert final["state"] == "completed"
    assert all(a["accept"] and a["accuracy_bps"] >= target for a in final["attestations"].values())
    poisoner = str(keys[0].address)
    for honest in [str(k.address) for k in keys[1:]]:
        reports = out.reports[honest]
        assert len(reports) == 3 and all(r.flagged == [poisoner] for r in reports)


@pytest.mark.e2e
@pytest.mark.slow
def test_worker_dying_mid_job_gets_its_stake_back_and_no_pay(net: Net) -> None:
    keys = register_workers(net, 3)
    job = make_job(net, "e2e-dies", rounds=3)
    out = run_job(net, job, keys, round_timeout_s=8, cancel_after_round={2: 0}, grace_s=4)
    assert isinstance(out.workers[2], asyncio.CancelledError)
    final = out.final
    assert final["state"] == "completed"
    alive, dead = [str(k.address) for k in keys[:2]], str(keys[2].address)
    assert set(final["results"]) == set(alive)
    assert [r.workers for r in out.reports[alive[0]]][1:] == [sorted(alive)] * 2
    pay = expected_worker_pay(final["results"], alive)
    for w in alive:
        assert out.delta(w) == pay[w] - 2 * TX_FEE - checkpoint_fees(out, w, 3)
    # its stake came back; it paid only the volunteer fee (and round 0's checkpoint if it recorded it)
    assert out.delta(dead) == -TX_FEE - checkpoint_fees(out, dead, 3)
    with Client(net.urls[0]) as client:
        assert client.account(dead)["worker"]["slash_count"] == 0


@pytest.mark.e2e
@pytest.mark.slow
def test_job_nobody_takes_expires_and_refunds_all_but_the_fee(net: Net) -> None:
    job = make_job(net, "e2e-expires")
    out = run_job(net, job, [], min_workers=1, deadline_blocks=15)
    final = out.final
    assert final["state"] == "expired" and final["escrow"] == 0 and final["workers"] == []
    # the escrow came back in full; the client is out the 1% network fee and the post's tx fee
    assert out.delta(net.client_key.address) == -(BUDGET // 100 + TX_FEE)
    assert out.treasury_delta == 0
    # an expired job has no model to fetch: a clean error, no file written
    done = subprocess.run([sys.executable, "-m", "bcai", "job", "result", final["job_id"], "-o",
                           str(net.home / "none.pt"), "--url", net.urls[0], "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and json.loads(done.stdout)["error"]["code"] == "wrong_state"
    assert not (net.home / "none.pt").exists()


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_submit_watch_runs_the_client_until_the_job_completes(net: Net, tmp_path: Path) -> None:
    keys = register_workers(net, 2)
    (tmp_path / "model.yaml").write_text(MLP_BML)
    (tmp_path / "job.yaml").write_text(
        "name: e2e-cli\nbml: model.yaml\ndataset: digits\nbudget: 500000\nrounds: 2\nlocal_epochs: 1\n"
        "aggregation: fedavg\ntarget_accuracy: 0.5\nevaluators: 2\nworkers: {min: 2, max: 2}\n"
        "worker_stake: 10000\ndeadline_blocks: 2000\n")

    out_file, err_file = tmp_path / "submit.out", tmp_path / "submit.err"
    with Client(net.urls[0]) as reader:
        known = {j["job_id"] for j in reader.jobs()}

    async def scenario() -> tuple[int, list[Any]]:
        with out_file.open("wb") as out, err_file.open("wb") as err:  # files, not pipes: nothing can block
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bcai", "job", "submit", str(tmp_path / "job.yaml"), "--key", "client",
                "--home", str(net.home), "--url", net.urls[0], "--watch", "--json", stdout=out, stderr=err)
            job = await asyncio.wait_for(asyncio.to_thread(wait_for_new_job, net.urls[0], known), 120)
            workers = [Client(net.urls[(i + 1) % 4], key=k) for i, k in enumerate(keys)]
            evaluators = [Client(net.urls[(i + 2) % 4], key=k) for i, k in enumerate(net.evaluator_keys)]
            for e in evaluators:
                await asyncio.wait_for(asyncio.to_thread(wait_for_job, e, job["job_id"]), 60)
            agents = [run_worker(w, http_channels, spec_cid=job["spec_cid"], timeout_s=240) for w in workers]
            agents += [run_evaluator(e, http_channels, job_id=job["job_id"], timeout_s=240) for e in evaluators]
            results = await asyncio.gather(*agents, return_exceptions=True)
            try:
                await asyncio.wait_for(cli.wait(), 60)
            except asyncio.TimeoutError:
                cli.kill()
                await cli.wait()
                raise AssertionError(f"bcai job submit did not end: {results} {err_file.read_text()[-3000:]}") from None
            for c in workers + evaluators:
                c.close()
            return cli.returncode or 0, results

    rc, results = asyncio.run(scenario())
    stdout = out_file.read_text()
    assert rc == 0, stdout + err_file.read_text()
    assert not [r for r in results if isinstance(r, BaseException)], results
    view = json.loads(stdout)
    assert view["state"] == "completed" and view["keys_released"] is True and view["budget"] == 500_000
    assert sorted(view["workers"]) == sorted(str(k.address) for k in keys)
    assert {r["model_cid"] for r in view["results"].values()} == {uploaded_cid(results[0])}


@pytest.mark.e2e
@pytest.mark.slow
def test_data_parallel_job_completes_with_the_same_model_from_every_worker(net: Net) -> None:
    from bcai.training.dp_job import DataParallelJobResult

    keys = register_workers(net, 3)
    job = prepare_job("e2e-data-parallel", MLP_BML, net.train, net.test, rounds=1, local_epochs=2,
                      target_accuracy_bps=8_000, paradigm="data_parallel", checkpoint_every=10)
    recorded: list[dict[str, Any]] = []  # checkpoints committed on chain (by the leader)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "dp_checkpoint_recorded":
            recorded.append(data)

    out = run_job(net, job, keys, worker_options={i: {"on_event": on_event} for i in range(3)})
    final = out.final
    assert final["state"] == "completed", final
    assert all(isinstance(r, DataParallelJobResult) for r in out.workers), out.workers
    model_cid = str(out.workers[0].model_cid)  # type: ignore[union-attr]
    assert {str(r.model_cid) for r in out.workers} == {model_cid}  # type: ignore[union-attr]
    assert {r["model_cid"] for r in final["results"].values()} == {model_cid}
    assert all(a["model_cid"] == model_cid and a["accept"] and a["accuracy_bps"] >= 8_000
               for a in final["attestations"].values())
    workers = [str(k.address) for k in keys]
    assert sum(final["results"][w]["samples"] for w in workers) == 2 * 1437  # each example once per epoch
    pay = expected_worker_pay(final["results"], workers)
    steps = 2 * -(-1437 // 32)  # 2 epochs of 45 global batches of 32
    assert [d["step"] for d in recorded] == list(range(10, steps + 1, 10))  # every 10 global steps, on chain
    assert final["checkpoint"]["round"] == recorded[-1]["step"] and final["checkpoint"]["cid"] == recorded[-1]["cid"]
    for w in workers:  # the ledger's rule, unchanged: 90% by samples; volunteer, submit and checkpoint fees
        assert out.delta(w) == pay[w] - 2 * TX_FEE - TX_FEE * sum(d["worker"] == w for d in recorded)


@pytest.mark.e2e
@pytest.mark.slow
def test_data_parallel_rank_killed_mid_job_the_others_resume_and_are_paid(net: Net) -> None:
    import os
    import signal

    from bcai.errors import RankFailed
    from bcai.training.dp_job import DataParallelJobResult

    keys = register_workers(net, 3)
    job = prepare_job("e2e-data-parallel-kill", MLP_BML, net.train, net.test, rounds=1, local_epochs=3,
                      target_accuracy_bps=8_000, paradigm="data_parallel", checkpoint_every=5)
    pids: dict[int, int] = {}
    killed: dict[str, int] = {}
    recorded: list[dict[str, Any]] = []  # checkpoints committed on chain (by each generation's leader)

    def on_event_of(i: int) -> Callable[[str, dict[str, Any]], None]:
        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "dp_rank_started" and data["generation"] == 0:
                pids[i] = data["pid"]
            if kind == "dp_checkpoint" and data["generation"] == 0 and not killed and 2 in pids:
                killed["step"] = data["step"]
                os.kill(pids[2], signal.SIGKILL)  # worker 2's rank process dies mid-training
            if kind == "dp_checkpoint_recorded":
                recorded.append(data)
        return on_event

    out = run_job(net, job, keys, round_timeout_s=20, grace_s=4,
                  worker_options={i: {"on_event": on_event_of(i)} for i in range(3)})
    assert killed, "the rank was never killed"
    assert isinstance(out.workers[2], RankFailed), out.workers
    final = out.final
    assert final["state"] == "completed", final
    alive, dead = [str(k.address) for k in keys[:2]], str(keys[2].address)
    assert set(final["results"]) == set(alive)
    survivors = out.workers[:2]
    assert all(isinstance(r, DataParallelJobResult) and [g.generation for g in r.rounds] == [0, 1]
               and r.rounds[1].resumed_from for r in survivors), survivors
    assert {r["model_cid"] for r in final["results"].values()} == {str(survivors[0].model_cid)}  # type: ignore[union-attr]
    pay = expected_worker_pay(final["results"], alive)
    steps = [d["step"] for d in recorded]
    assert steps == sorted(set(steps)) and final["checkpoint"]["round"] == steps[-1]  # increasing, the latest on chain
    fees = {w: TX_FEE * sum(d["worker"] == w for d in recorded) for w in [*alive, dead]}
    for w in alive:
        assert out.delta(w) == pay[w] - 2 * TX_FEE - fees[w]
    assert out.delta(dead) == -TX_FEE - fees[dead]  # its stake came back; it paid the volunteer (and checkpoint) fees
