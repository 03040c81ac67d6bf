"""Federated rounds without a coordinator: agreement, dropout, poisoning, forged updates."""

import asyncio

import numpy as np
import pytest
import torch

from bcai.crypto import PrivateKey
from bcai.errors import DecryptionFailed, InvalidDataset, InvalidJobDocument, InvalidSubmittedModel, InvalidRoundUpdate
from bcai.training.data import (
    Dataset, compute_shard, decode_dataset, decrypt_artifact, encode_dataset, encrypt_artifact, load_digits_splits,
    new_data_key,
)
from bcai.training.federated import MemoryChannel, RoundUpdate, UpdateBoard, run_federated_worker
from bcai.training.spec import JobSpec
from bcai.verify.evaluation import evaluate_model
from bcai.vm.frontends.bml import from_bml
from bcai.vm.interpreter import VM

TINY_MLP = """
bml: 1
name: tiny-mlp
model: {template: mlp, input_shape: [1, 8, 8], hidden: [32], num_classes: 10, activation: relu}
training: {optimizer: sgd, momentum: 0.9, lr: 0.05, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 3}
devices: [cpu]
"""
CHAIN = "bcai-test"
JOB = b"j" * 32


@pytest.fixture(scope="module")
def digits():
    return load_digits_splits()


@pytest.fixture(scope="module")
def program():
    return from_bml(TINY_MLP)


def run_workers(program, train, keys, rounds, *, rule="fedavg", transforms=None, silent_after=None, timeout_s=20.0):
    addresses = [k.address for k in keys]
    board = UpdateBoard(CHAIN, JOB, addresses)
    channel = MemoryChannel(board)

    async def one(i, key):
        rounds_for_me = rounds if silent_after is None or i != silent_after[0] else silent_after[1]
        return await run_federated_worker(
            key=key, chain_id=CHAIN, job_id=JOB, workers=addresses, session=VM(deterministic=True).load(program),
            data=train, rounds=rounds_for_me, local_epochs=1, rule_name=rule, channel=channel, seed=program.seed,
            round_timeout_s=timeout_s, transform=(transforms or {}).get(i))

    async def main():
        return await asyncio.gather(*[one(i, k) for i, k in enumerate(keys)])

    return asyncio.run(main()), board


def test_workers_agree_on_the_model_every_round(digits, program):
    train, test = digits
    keys = [PrivateKey.from_label(f"w{i}") for i in range(3)]
    results, _ = run_workers(program, train, keys, rounds=3)
    assert len({r.model_cid for r in results}) == 1
    assert [r.checkpoint for r in results[0].rounds] == [r.checkpoint for r in results[1].rounds]
    evaluation = evaluate_model(program, results[0].model, test)
    assert evaluation.model_cid == results[0].model_cid
    assert evaluation.accuracy > 0.85


def test_a_dead_worker_is_dropped_and_its_share_redistributed(digits, program):
    train, _ = digits
    keys = [PrivateKey.from_label(f"d{i}") for i in range(3)]
    results, _ = run_workers(program, train, keys, rounds=3, silent_after=(2, 1), timeout_s=3.0)
    survivors = results[:2]
    assert len({r.model_cid for r in survivors}) == 1
    assert len(survivors[0].rounds[0].workers) == 3
    assert len(survivors[0].rounds[1].workers) == 2  # the third stopped after round 0
    shards = [compute_shard(len(train), survivors[0].rounds[1].workers, w, 1, 3) for w in survivors[0].rounds[1].workers]
    assert sorted(np.concatenate(shards).tolist()) == list(range(len(train)))  # all data still covered


def test_poisoning_worker_is_flagged_and_median_holds(digits, program):
    train, test = digits
    keys = [PrivateKey.from_label(f"p{i}") for i in range(3)]
    poison = {2: lambda params, r: {k: v * 50 + 3 for k, v in params.items()}}
    results, _ = run_workers(program, train, keys, rounds=3, rule="median", transforms=poison)
    honest = results[0]
    assert str(keys[2].address) in honest.rounds[0].flagged
    assert str(keys[0].address) not in honest.rounds[0].flagged
    assert evaluate_model(program, honest.model, test).accuracy > 0.85


def test_invalid_round_updates_are_refused():
    worker, outsider = PrivateKey.from_label("w"), PrivateKey.from_label("outsider")
    board = UpdateBoard(CHAIN, JOB, [worker.address])
    good = RoundUpdate.create(worker, CHAIN, JOB, 0, 10, b"params")
    assert board.offer(good.to_bytes()) is not None
    forged = RoundUpdate(JOB, 1, worker.public_key, 10, b"params", outsider.sign("fl-update", CHAIN, b"x"))
    other_chain = RoundUpdate.create(worker, "other", JOB, 1, 10, b"params")
    other_job = RoundUpdate.create(worker, CHAIN, b"k" * 32, 1, 10, b"params")
    not_worker = RoundUpdate.create(outsider, CHAIN, JOB, 1, 10, b"params")
    for bad in (forged.to_bytes(), other_chain.to_bytes(), other_job.to_bytes(), not_worker.to_bytes(),
                b"garbage", b"\x82\x40\x40"):
        assert board.offer(bad) is None
    assert board.rejected == 6
    with pytest.raises(InvalidRoundUpdate):
        RoundUpdate.from_bytes(b"\xff", CHAIN)


def test_dataset_artifacts_round_trip_and_stay_secret(digits):
    train, _ = digits
    key = new_data_key()
    blob = encrypt_artifact(encode_dataset(train), key)
    back = decode_dataset(decrypt_artifact(blob, key))
    assert np.array_equal(back.x, train.x) and np.array_equal(back.y, train.y)
    with pytest.raises(DecryptionFailed):
        decrypt_artifact(blob, new_data_key())
    with pytest.raises(DecryptionFailed):
        decrypt_artifact(blob[:-1] + bytes([blob[-1] ^ 1]), key)


def test_invalid_dataset_rejected():
    from bcai.vm.tensors import encode_tensors

    with pytest.raises(InvalidDataset):
        decode_dataset(encode_tensors({"x": torch.zeros(2, 3)}))
    with pytest.raises(InvalidDataset):
        decode_dataset(encode_tensors({"x": torch.zeros(2, 3), "y": torch.zeros(2)}))  # float labels
    with pytest.raises(InvalidDataset):
        Dataset(np.zeros((2, 3), np.float32), np.zeros(3, np.int64))
    for x, y in [(torch.zeros(()), torch.zeros(2, dtype=torch.int64)),  # a scalar: no samples at all
                 (torch.zeros(2, 3), torch.zeros(2, 1, dtype=torch.int64))]:  # labels of shape (N, 1)
        with pytest.raises(InvalidDataset, match="shape"):
            decode_dataset(encode_tensors({"x": x, "y": y}))


def test_invalid_model_rejected_by_evaluation(digits, program):
    from bcai.vm.tensors import encode_tensors

    _, test = digits
    with pytest.raises(InvalidSubmittedModel):
        evaluate_model(program, encode_tensors({"nope": torch.zeros(2)}), test)
    with pytest.raises(InvalidSubmittedModel):
        evaluate_model(program, b"not tensors", test)


def test_job_spec_round_trip_and_rejections():
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    spec = JobSpec(name="j", bml=TINY_MLP, train_cid=cid, test_cid=cid, train_samples=10)
    assert JobSpec.from_bytes(spec.to_bytes()) == spec
    assert spec.cid.codec_name == "dag-cbor"
    for bad in [dict(train_cid="nope"), dict(paradigm="tournament"), dict(aggregation="mean"), dict(rounds=0),
                dict(target_accuracy_bps=10_001)]:
        with pytest.raises(InvalidJobDocument):
            JobSpec(**{**dict(name="j", bml="", train_cid=cid, test_cid=cid, train_samples=10), **bad})
    with pytest.raises(InvalidJobDocument):
        JobSpec.from_bytes(b"\xa0")
    with pytest.raises(InvalidJobDocument):
        JobSpec.from_bytes(b"\x00" * 300_000)
