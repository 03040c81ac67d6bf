"""The demo job, step by step (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bcai.crypto import PrivateKey
from bcai.crypto.keystore import KeyStore
from bcai.demo.job import (
    BUDGET, FUNDING, LOCAL_EPOCHS, N_EVALUATORS, N_VALIDATORS, N_WORKERS, REGISTRY_STAKE, ROUNDS, TARGET_ACCURACY_BPS,
    WORKER_STAKE, demo_bml,
)
from bcai.errors import DevnetNotFound
from bcai.ledger import Capabilities
from bcai.node import devnet
from bcai.sdk import Client
from bcai.training.data import load_digits_splits
from bcai.training.federated import RoundReport
from bcai.training.jobflow import http_channels, prepare_job, run_client, run_evaluator, run_worker



@dataclass
class DemoResult:
    job_id: str = ""
    state: str = ""
    accuracy: float = 0.0
    accuracy_bps: int = 0
    model_cid: str = ""
    height: int = 0
    job_blocks: dict[str, int] = field(default_factory=dict)  # step -> height
    payouts: dict[str, int] = field(default_factory=dict)  # address -> amount paid by the job
    roles: dict[str, str] = field(default_factory=dict)  # address -> role
    balances_before: dict[str, int] = field(default_factory=dict)
    balances_after: dict[str, int] = field(default_factory=dict)
    network_fee: int = 0
    treasury_share: int = 0
    rounds: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


Progress = Callable[[str, dict[str, Any]], None]


async def run_demo_job(urls: list[str], client_key: PrivateKey, progress: Progress) -> DemoResult:
    """Run the demo job against a running chain whose node APIs are `urls`."""
    started = time.monotonic()
    result = DemoResult()
    client = Client(urls[0], key=client_key)
    params = client.params()["ledger"]
    fee = int(params["min_fee"])
    worker_keys = [PrivateKey.generate() for _ in range(N_WORKERS)]
    evaluator_keys = [PrivateKey.generate() for _ in range(N_EVALUATORS)]
    # each participant talks to its own node (the client to node 0)
    workers = [Client(urls[(i + 1) % len(urls)], key=k) for i, k in enumerate(worker_keys)]
    evaluators = [Client(urls[(i + 2) % len(urls)], key=k) for i, k in enumerate(evaluator_keys)]
    result.roles = {str(client_key.address): "client",
                    **{str(k.address): f"worker{i}" for i, k in enumerate(worker_keys)},
                    **{str(k.address): f"evaluator{i}" for i, k in enumerate(evaluator_keys)}}
    # fund and register the participants (real signed transactions)
    progress("setup", {"message": "funding and registering 3 workers and 2 evaluators"})
    hashes = [client.transfer(k.address, FUNDING) for k in worker_keys + evaluator_keys]
    for h in hashes:
        client.wait_for_tx(h, 60)
    caps = Capabilities(cpu_cores=2, memory_mb=4096, gpu_count=0, gpu_memory_mb=0, bandwidth_mbps=1000,
                        node_type="cpu")
    registrations = [w.register_worker(REGISTRY_STAKE, caps) for w in workers]
    registrations += [e.register_evaluator(REGISTRY_STAKE) for e in evaluators]
    for participant, h in zip(workers + evaluators, registrations):
        participant.wait_for_tx(h, 60)
    result.balances_before = {addr: client.balance(addr) for addr in result.roles}
    treasury_before = int(client.status().get("treasury", 0))

    # the job
    train, test = load_digits_splits()
    job = prepare_job("digits-cnn-federated", demo_bml(), train, test, rounds=ROUNDS, local_epochs=LOCAL_EPOCHS,
                      target_accuracy_bps=TARGET_ACCURACY_BPS)
    
    checkpoints: dict[str, int] = {}  # worker -> round checkpoints it recorded (one tx fee each)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "posted":
            result.job_id = data["job_id"]
        if kind == "checkpoint":
            checkpoints[data["worker"]] = checkpoints.get(data["worker"], 0) + 1
        if data.get("height"):
            step = kind if kind == "posted" else f"{kind}:{data.get('worker') or data.get('evaluator')}"
            result.job_blocks[step] = int(data["height"])
        progress(kind, data)

    def on_round(report: RoundReport) -> None:
        result.rounds.append({"round": report.round_index + 1, "loss": round(report.loss, 4),
                              "accuracy": round(report.accuracy, 4), "workers": len(report.workers),
                              "checkpoint": report.checkpoint})
        progress("round", result.rounds[-1])

    # Every agent talks to the chain and to the others through its own node: job messages
    # travel between the node processes on the job's gossip topic.
    async with asyncio.TaskGroup() as group:  # one failure cancels the rest and surfaces
        client_task = group.create_task(run_client(
            client, job, http_channels, budget=BUDGET, worker_stake=WORKER_STAKE,
            required_evaluators=N_EVALUATORS, min_workers=N_WORKERS, max_workers=N_WORKERS, deadline_blocks=2_000,
            on_event=on_event))
        worker_tasks = [group.create_task(run_worker(w, http_channels, spec_cid=str(job.spec.cid), on_event=on_event,
                                                     on_round=on_round if i == 0 else None))
                        for i, w in enumerate(workers)]
        evaluator_tasks = [group.create_task(run_evaluator(e, http_channels, on_event=on_event)) for e in evaluators]
    final = client_task.result()
    trained = [t.result() for t in worker_tasks]
    evaluations = [t.result() for t in evaluator_tasks]
    result.state = final["state"]
    result.model_cid = str(trained[0].model_cid) if trained[0] else ""
    best = [e for batch in evaluations for e in batch if str(e.model_cid) == result.model_cid]
    if best:
        result.accuracy, result.accuracy_bps = best[0].accuracy, best[0].accuracy_bps
    status = client.status()
    result.height = int(status["height"])
    result.balances_after = {addr: client.balance(addr) for addr in result.roles}
    result.treasury_share = int(status.get("treasury", 0)) - treasury_before
    result.network_fee = BUDGET * int(params.get("network_fee_bps", 100)) // 10_000
    # what the job paid each participant: the balance change plus what they put in
    # (tx fees, the job's worker stake is returned, the registry stake stays bonded)
    for addr, role in result.roles.items():
        spent = fee * (_tx_count(role) + checkpoints.get(addr, 0))
        delta = result.balances_after[addr] - result.balances_before[addr]
        if role == "client":
            continue
        result.payouts[addr] = delta + spent
    result.wall_seconds = round(time.monotonic() - started, 1)
    for c in [client, *workers, *evaluators]:
        c.close()
    return result


def _tx_count(role: str) -> int:
    """Transactions each role sends after the 'before' snapshot (each pays the minimum fee)."""
    if role.startswith("worker"):
        return 2  # volunteer, submit_result (plus the round checkpoints it recorded, counted apart)
    if role.startswith("evaluator"):
        return 1  # attest
    return 1  # post_job


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_demo(home: Path | None, progress: Progress, keep: bool = False) -> DemoResult:
    """Boot a devnet, run the demo job on it, stop the devnet (unless `keep`)."""
    owned = home is None
    home = Path(tempfile.mkdtemp(prefix="bcai-demo-")) if home is None else Path(home)
    progress("devnet", {"message": f"starting {N_VALIDATORS} validators under {home}"})
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the devnet below is stopped too
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if in_main_thread else None
    try:
        nodes = devnet.up(home, N_VALIDATORS, fresh=True, wait_s=120)
        client_key = KeyStore(home).load("client")
        try:
            return asyncio.run(run_demo_job([n.api_url for n in nodes], client_key, progress))
        except ExceptionGroup as group:  # from the agents' TaskGroup: report the first cause
            first = group.exceptions[0]
            while isinstance(first, ExceptionGroup):
                first = first.exceptions[0]
            raise first from group
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if not keep:
            with contextlib.suppress(DevnetNotFound):
                devnet.down(home)
            if owned:
                import shutil

                shutil.rmtree(home, ignore_errors=True)
