"""Federated (3 workers, coordinator-free FedAvg) and data-parallel (3 ranks, gradients
all-reduced every step over gloo, each rank in its own spawned process, rendezvous as in a
job) vs centralized training of the same model.

Same BML program (the demo's digits CNN), same number of passes over every sample
(ROUNDS x LOCAL_EPOCHS), same threads per process, side by side in one run. Prints test
accuracy of each, the gap in percentage points (goal: at most 1), and the wall-time ratios
(data-parallel includes spawning its rank processes).

    python benchmarks/federated_vs_centralized.py
"""

from __future__ import annotations

import asyncio
import time

import torch

from bcai.crypto import Cid, PrivateKey
from bcai.demo.job import LOCAL_EPOCHS, ROUNDS, demo_bml
from bcai.training.data import load_digits_splits
from bcai.training.dp_job import run_data_parallel_job
from bcai.training.federated import MemoryChannel, UpdateBoard, run_federated_worker
from bcai.verify.evaluation import evaluate_model
from bcai.vm.frontends.bml import from_bml
from bcai.vm.interpreter import VM
from bcai.vm.loop import train_epochs
from bcai.vm.tensors import encode_tensors

WORKERS = 3


async def federated(program, train):
    keys = [PrivateKey.from_label(f"bench-worker-{i}") for i in range(WORKERS)]
    addresses = [k.address for k in keys]
    channel = MemoryChannel(UpdateBoard("bench", b"job", addresses))
    results = await asyncio.gather(*[
        run_federated_worker(key=k, chain_id="bench", job_id=b"job", workers=addresses,
                             session=VM(deterministic=True).load(program), data=train, rounds=ROUNDS,
                             local_epochs=LOCAL_EPOCHS, rule_name="fedavg", channel=channel, seed=program.seed)
        for k in keys])
    assert len({r.model_cid for r in results}) == 1
    return results[0].model


class ListChannel:
    def __init__(self):
        self.messages = []

    async def publish(self, data):
        self.messages.append(data)


class DictStore:
    def __init__(self):
        self.blobs = {}

    def upload(self, data, codec):
        cid = Cid.of(data, codec)
        self.blobs[str(cid)] = data
        return cid

    def download(self, cid):
        return self.blobs[str(cid)]


async def data_parallel(bml, train):
    keys = [PrivateKey.from_label(f"bench-worker-{i}") for i in range(WORKERS)]
    addresses = [k.address for k in keys]
    channel = ListChannel()
    results = await asyncio.gather(*[
        run_data_parallel_job(key=k, chain_id="bench", job_id=bytes(32), workers=addresses, channel=channel,
                              messages=channel.messages, store=DictStore(), bml=bml, data=train,
                              epochs=ROUNDS * LOCAL_EPOCHS, checkpoint_every=0, timeout_s=120)
        for k in keys])
    assert len({r.model_cid for r in results}) == 1
    return results[0].model


def centralized(program, train):
    session = VM(deterministic=True).load(program)
    train_epochs(session, train.x, train.y, epochs=ROUNDS * LOCAL_EPOCHS, seed=program.seed)
    return encode_tensors(session.get_parameters())


def main() -> None:
    train, test = load_digits_splits()
    program = from_bml(demo_bml())
    t0 = time.perf_counter()
    central_model = centralized(program, train)
    t_central = time.perf_counter() - t0
    t0 = time.perf_counter()
    fed_model = asyncio.run(federated(program, train))
    t_fed = time.perf_counter() - t0
    t0 = time.perf_counter()
    dp_model = asyncio.run(data_parallel(demo_bml(), train))
    t_dp = time.perf_counter() - t0
    acc_c = evaluate_model(program, central_model, test).accuracy
    acc_f = evaluate_model(program, fed_model, test).accuracy
    acc_d = evaluate_model(program, dp_model, test).accuracy
    print(f"threads={torch.get_num_threads()} rounds={ROUNDS} local_epochs={LOCAL_EPOCHS} workers={WORKERS}")
    print(f"centralized: accuracy {acc_c * 100:.2f}%  wall {t_central:.1f} s")
    print(f"federated:   accuracy {acc_f * 100:.2f}%  wall {t_fed:.1f} s")
    print(f"data-parallel ({WORKERS} ranks): accuracy {acc_d * 100:.2f}%  wall {t_dp:.1f} s")
    print(f"accuracy gap (centralized - federated): {(acc_c - acc_f) * 100:+.2f} pp (goal <= 1.00)")
    print(f"accuracy gap (centralized - data-parallel): {(acc_c - acc_d) * 100:+.2f} pp (goal <= 1.00)")
    print(f"wall-time ratio federated / centralized: {t_fed / t_central:.2f}x")
    print(f"wall-time ratio data-parallel / centralized: {t_dp / t_central:.2f}x")


if __name__ == "__main__":
    main()
