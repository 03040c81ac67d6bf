"""Data-parallel jobs (`bcai.training.dp_job`): rendezvous on a job channel, one spawned rank
process per worker, checkpoints in a content store, survivors resuming after a killed rank,
and the messages' checks. The workers share one process here (as in the demo), which is
why each rank trains in its own child."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
import torch

from bcai.crypto import CODEC_DAG_CBOR, Cid, PrivateKey
from bcai.encoding import encode
from bcai.errors import InvalidDpMessage, InvalidFeed, InvalidJobDocument, RankFailed
from bcai.training.data import Dataset, load_digits_splits
from bcai.training.data_parallel import run_data_parallel_worker
from bcai.training.dp_job import (
    DataParallelJobResult, DpBoard, DpMessage, decode_checkpoint, encode_checkpoint, run_data_parallel_job,
)
from bcai.training.spec import JobSpec
from bcai.verify.evaluation import evaluate_model
from bcai.vm.frontends.bml import from_bml
from bcai.vm.interpreter import VM
from bcai.vm.loop import train_epochs

pytestmark = pytest.mark.timeout(300)

CHAIN, JOB = "bcai-dptest", bytes(range(32))
MLP = """
bml: 1
name: dp-mlp
model: {template: mlp, input_shape: [64], hidden: [32], num_classes: 10, activation: relu}
training: {optimizer: adam, lr: 0.01, epochs: 1, batch_size: 32, loss: cross_entropy, seed: 3}
devices: [cpu]
"""
EPOCHS, EVERY = 3, 5  # 1437 examples: 45 steps an epoch, 135 in all; a checkpoint every 5


def digits() -> tuple[Dataset, Dataset]:
    train, test = load_digits_splits()
    return Dataset(train.x.reshape(len(train), 64), train.y), Dataset(test.x.reshape(len(test), 64), test.y)


class SharedChannel:
    """Every worker publishes to, and reads from, one list (the job channel in one process)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def publish(self, data: bytes) -> None:
        self.messages.append(data)


class DictStore:
    """A content store in memory, addressed by CID like the node's."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def upload(self, data: bytes, codec: int = CODEC_DAG_CBOR) -> Cid:
        cid = Cid.of(data, codec)
        self.blobs[str(cid)] = data
        return cid

    def download(self, cid: Cid | str) -> bytes:
        return self.blobs[str(cid)]


KEYS = [PrivateKey.from_label(f"dp-worker-{i}") for i in range(3)]
WORKERS = [k.address for k in KEYS]


def run_job(channel: SharedChannel, store: DictStore, kill: dict[str, Any] | None = None,
            keys: list[PrivateKey] = KEYS, timeout_s: float = 20) -> list[Any]:
    """Three workers of one job in this process; `kill`: {"victim": i, "signal": s} sends
    worker i's rank process signal s (default SIGKILL) when the leader announces its first
    checkpoint."""
    train, _ = digits()
    events: list[tuple[int, str, dict[str, Any]]] = []
    pids: dict[int, int] = {}

    def note_of(i: int) -> Any:
        def note(kind: str, data: dict[str, Any]) -> None:
            events.append((i, kind, {**data, "t": time.monotonic()}))
            if kind == "dp_rank_started" and data["generation"] == 0:
                pids[i] = data["pid"]
            if kill and kind == "dp_checkpoint" and data["generation"] == 0 and not kill.get("done"):
                kill["done"], kill["at"] = True, time.monotonic()
                os.kill(pids[kill["victim"]], kill.get("signal", signal.SIGKILL))
        return note

    async def scenario() -> list[Any]:
        return await asyncio.gather(*[
            run_data_parallel_job(key=k, chain_id=CHAIN, job_id=JOB, workers=WORKERS, channel=channel,
                                  messages=channel.messages, store=store, bml=MLP, data=train, epochs=EPOCHS,
                                  checkpoint_every=EVERY, timeout_s=timeout_s, rejoin_s=3, on_event=note_of(i))
            for i, k in enumerate(keys)], return_exceptions=True)

    results = asyncio.run(scenario())
    results.append(events)
    return results


def test_three_workers_train_one_model_that_reaches_the_target() -> None:
    channel, store = SharedChannel(), DictStore()
    outsider = PrivateKey.from_label("dp-outsider")
    # garbage and forged rendezvous messages already on the channel are ignored
    channel.messages += [b"\xffgarbage", encode(["hello", b"x"]),
                         DpMessage.create(outsider, CHAIN, "store", JOB, 0, host="10.6.6.6", port=6666,
                                          members=(outsider.address.raw,)).to_bytes(),
                         DpMessage.create(KEYS[2], "bcai-other", "join", JOB, 0).to_bytes()]
    *results, events = run_job(channel, store)
    assert all(isinstance(r, DataParallelJobResult) for r in results), results
    assert len({str(r.model_cid) for r in results}) == 1 and len({r.model for r in results}) == 1
    assert all(str(Cid.of(r.model, CODEC_DAG_CBOR)) == str(r.model_cid) for r in results)
    # ranks are the sorted addresses; every example of every epoch was processed exactly once
    ranks = {i: d["rank"] for i, kind, d in events if kind == "dp_generation"}
    order = sorted(range(3), key=lambda i: WORKERS[i].raw)
    assert [ranks[i] for i in order] == [0, 1, 2]
    assert sum(r.samples_processed for r in results) == 1437 * EPOCHS
    assert all(len(r.rounds) == 1 and r.rounds[0].outcome == "completed" for r in results)
    # the leader stored a checkpoint every 5 steps and announced it
    checkpoints = [d for _, kind, d in events if kind == "dp_checkpoint"]
    assert [c["step"] for c in checkpoints] == list(range(EVERY, 45 * EPOCHS + 1, EVERY))
    assert all(c["cid"] in store.blobs for c in checkpoints)
    accuracy = evaluate_model(from_bml(MLP), results[0].model, digits()[1]).accuracy
    assert accuracy >= 0.9, accuracy
    # the same as one process training on the same global batches (up to float32 rounding)
    session = VM(deterministic=True).load(from_bml(MLP))
    train, _ = digits()
    train_epochs(session, train.x, train.y, epochs=EPOCHS)
    reference, ours = session.get_parameters(), results[0].model
    from bcai.vm.tensors import decode_tensors
    distributed = decode_tensors(ours)
    assert max(float((distributed[k] - reference[k]).abs().max()) for k in reference) < 1e-3


def test_a_killed_rank_fails_cleanly_and_the_survivors_resume_from_the_last_checkpoint() -> None:
    channel, store = SharedChannel(), DictStore()
    victim = 2
    kill: dict[str, Any] = {"victim": victim}
    *results, events = run_job(channel, store, kill=kill)
    assert kill.get("done"), "the victim was never killed"
    assert isinstance(results[victim], RankFailed) and "died" in str(results[victim]), results
    survivors = [r for i, r in enumerate(results) if i != victim]
    assert all(isinstance(r, DataParallelJobResult) for r in survivors), results
    assert survivors[0].model_cid == survivors[1].model_cid
    for r in survivors:
        assert [g.generation for g in r.rounds] == [0, 1]
        assert r.rounds[1].members == sorted(str(WORKERS[i]) for i in range(3) if i != victim)
        assert r.rounds[1].resumed_from and r.rounds[1].start_step >= EVERY
        assert r.rounds[1].resumed_from in store.blobs
        assert decode_checkpoint(store.blobs[r.rounds[1].resumed_from])[0] == r.rounds[1].start_step
    # the victim's share was redistributed: the survivors processed the rest of every batch
    accuracy = evaluate_model(from_bml(MLP), survivors[0].model, digits()[1]).accuracy
    assert accuracy >= 0.9, accuracy
    assert any(kind == "dp_rank_lost" for _, kind, _ in events)


@pytest.mark.slow
def test_a_frozen_rank_times_out_the_others_who_resume_and_its_own_worker_fails() -> None:
    channel, store = SharedChannel(), DictStore()
    kill: dict[str, Any] = {"victim": 1, "signal": signal.SIGSTOP}  # alive but silent: a hung collective
    *results, events = run_job(channel, store, kill=kill, timeout_s=10)
    assert kill.get("done")
    assert isinstance(results[1], RankFailed) and "reported nothing" in str(results[1]), results
    survivors = [results[0], results[2]]
    assert all(isinstance(r, DataParallelJobResult) for r in survivors), results
    assert survivors[0].model_cid == survivors[1].model_cid
    assert all([g.generation for g in r.rounds] == [0, 1] for r in survivors)
    # its worker gave up after 5 s of silence, said so and killed it: the others moved on
    # without waiting out their 10 s collective timeout
    restarted = [d["t"] for i, kind, d in events if kind == "dp_generation" and d["generation"] == 1]
    assert len(restarted) == 2 and max(restarted) - kill["at"] < 10, (restarted, kill)


def test_resuming_from_a_checkpoint_replays_the_uninterrupted_run_bitwise() -> None:
    train, _ = digits()
    program = from_bml(MLP)
    saved: dict[int, bytes] = {}

    def run(session: Any, **kwargs: Any) -> Any:
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return run_data_parallel_worker(rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{port}",
                                        session=session, data=train, epochs=2, batch_size=32, seed=3,
                                        timeout_s=20, **kwargs)

    whole = run(VM(deterministic=True).load(program), checkpoint_every=7,
                on_checkpoint=lambda step, state, samples: saved.setdefault(step, state))
    assert sorted(saved) == list(range(7, 90, 7))
    resumed_session = VM(deterministic=True).load(program)
    resumed_session.import_state(saved[49])  # in the middle of epoch 1 (45 steps an epoch)
    resumed = run(resumed_session, start_step=49)
    assert resumed.model_cid == whole.model_cid
    assert resumed.samples == 1437 * 2 - (1437 + 4 * 32)  # step 49 is the 5th batch of epoch 1


def make(key: PrivateKey, kind: str, generation: int = 0, chain: str = CHAIN, job: bytes = JOB, **f: Any) -> bytes:
    return DpMessage.create(key, chain, kind, job, generation, **f).to_bytes()


def test_invalid_rendezvous_messages_are_ignored_by_the_board() -> None:
    source: list[bytes] = []
    board = DpBoard(CHAIN, JOB, WORKERS, source)
    leader = min(KEYS, key=lambda k: k.address.raw)
    members = tuple(sorted(a.raw for a in WORKERS))
    outsider = PrivateKey.from_label("dp-outsider")
    good_store = make(leader, "store", host="127.0.0.1", port=4000, members=members)
    forged = DpMessage.from_bytes(good_store, CHAIN)
    forged_bytes = encode([encode(["dp", "store", JOB, 0, leader.public_key.raw, "10.0.0.9", 4000,
                                   list(members), "", 0]), forged.signature])  # host changed after signing
    source += [
        b"garbage", b"", encode(["dp"]), encode("text"),
        make(outsider, "join"),  # not a worker of the job
        make(KEYS[0], "join", chain="bcai-other"),  # signed for another chain
        make(KEYS[0], "join", job=bytes(32)),  # another job
        forged_bytes,  # wrong signature
        make(outsider, "store", host="127.0.0.1", port=4000, members=(outsider.address.raw,)),
        make(outsider, "checkpoint", cid=str(Cid.of(b"x")), step=5),
    ]
    board.refresh()
    assert board.rejected == 10
    assert not board.joins and not board.stores and not board.checkpoints
    source += [make(KEYS[0], "join"), good_store]
    board.refresh()
    assert board.joins == {0: {KEYS[0].address}} and board.get_store(0, KEYS[1].address) is not None
    # a member that is not a worker is refused even from a worker leader
    above = next(k for k in (PrivateKey.from_label(f"dp-other-{i}") for i in range(100))
                 if k.address.raw > leader.address.raw)
    assert board.offer(make(leader, "store", 1, host="h", port=1, members=(leader.address.raw, above.address.raw))) \
        is None
    assert 1 not in board.stores


@pytest.mark.parametrize("kind, fields, message", [
    ("hello", {}, "unknown data-parallel message kind"),
    ("join", {"port": 5}, "join and leave carry only the generation"),
    ("checkpoint", {"cid": "", "step": 3}, "a checkpoint carries a CID"),
    ("checkpoint", {"cid": "not-a-cid", "step": 3}, "cid"),
    ("store", {"host": "", "port": 1, "members": ()}, "is not an address"),
    ("store", {"host": "h", "port": 70000, "members": ()}, "is not an address"),
    ("store", {"host": "h", "port": 1, "members": ()}, "members must be sorted"),
    ("store", {"host": "h", "port": 1, "members": (b"\x00" * 20,)}, "members must be sorted"),
    ("join", {"generation": -1}, "generation must be an int"),
])
def test_invalid_dp_message_fields_are_refused(kind: str, fields: dict[str, Any], message: str) -> None:
    generation = fields.pop("generation", 0)
    with pytest.raises(InvalidDpMessage, match=message):
        DpMessage.create(KEYS[0], CHAIN, kind, JOB, generation, **fields)


def test_invalid_store_resume_point_and_checkpoint_document() -> None:
    me = KEYS[0]
    with pytest.raises(InvalidDpMessage, match="resume point needs both"):
        DpMessage.create(me, CHAIN, "store", JOB, 0, host="h", port=1, members=(me.address.raw,), step=4)
    assert decode_checkpoint(encode_checkpoint(3, b"state")) == (3, b"state")
    for bad in (b"\xff", encode({"state": b"s"}), encode({"state": "s", "step": 1}), encode({"state": b"", "step": 0})):
        with pytest.raises(InvalidDpMessage, match="bad checkpoint document"):
            decode_checkpoint(bad)
    with pytest.raises(InvalidDpMessage, match="over"):
        DpMessage.from_bytes(b"\x00" * 70_000, CHAIN)


def test_invalid_job_settings_are_refused_before_any_process_starts() -> None:
    train, _ = digits()
    channel, store = SharedChannel(), DictStore()
    common: dict[str, Any] = dict(chain_id=CHAIN, job_id=JOB, workers=WORKERS, channel=channel,
                                  messages=channel.messages, store=store, bml=MLP, data=train, epochs=1,
                                  checkpoint_every=0)
    with pytest.raises(InvalidDpMessage, match="is not a worker"):
        asyncio.run(run_data_parallel_job(key=PrivateKey.from_label("dp-outsider"), **common))
    with pytest.raises(InvalidJobDocument, match="bad data-parallel settings"):
        asyncio.run(run_data_parallel_job(key=KEYS[0], **{**common, "epochs": 0}))
    program = from_bml(MLP)
    assert not channel.messages  # nothing was published
    with pytest.raises(InvalidFeed, match="start_step"):
        run_data_parallel_worker(rank=0, world_size=1, init_method="tcp://127.0.0.1:1",
                                 session=VM(deterministic=True).load(program), data=train, epochs=1,
                                 batch_size=8, seed=0, start_step=-1)
    with pytest.raises(InvalidFeed, match="exactly one of init_method and store"):
        run_data_parallel_worker(rank=0, world_size=1, session=VM(deterministic=True).load(program), data=train,
                                 epochs=1, batch_size=8, seed=0)
    assert not torch.distributed.is_initialized()


def test_the_spec_takes_the_data_parallel_paradigm_and_checks_checkpoint_every() -> None:
    cid = str(Cid.of(b"data"))
    spec = JobSpec(name="dp", bml=MLP, train_cid=cid, test_cid=cid, train_samples=10, paradigm="data_parallel",
                   checkpoint_every=20)
    assert JobSpec.from_bytes(spec.to_bytes()) == spec
    for bad in (-1, 1_000_001):
        with pytest.raises(InvalidJobDocument, match="checkpoint_every"):
            JobSpec(name="dp", bml=MLP, train_cid=cid, test_cid=cid, train_samples=10, checkpoint_every=bad)
    with pytest.raises(InvalidJobDocument, match="paradigm"):
        JobSpec(name="dp", bml=MLP, train_cid=cid, test_cid=cid, train_samples=10, paradigm="tournament")


def test_a_spec_without_checkpoints_keeps_its_encoding_and_one_spelling() -> None:
    from bcai.encoding import decode, encode

    cid = str(Cid.of(b"data"))
    spec = JobSpec(name="fed", bml=MLP, train_cid=cid, test_cid=cid, train_samples=10)
    value = decode(spec.to_bytes())
    assert "checkpoint_every" not in value and "search" not in value  # the bytes of specs from before both fields
    with pytest.raises(InvalidJobDocument, match="checkpoint_every at its default is left out"):
        JobSpec.from_bytes(encode({**value, "checkpoint_every": 0}))
    with pytest.raises(InvalidJobDocument, match="checkpoint_every must be int"):
        JobSpec.from_bytes(encode({**value, "checkpoint_every": "20"}))
    with pytest.raises(InvalidJobDocument, match="needs the fields"):
        JobSpec.from_bytes(encode({k: v for k, v in value.items() if k != "rounds"}))



def _die_halfway_through_a_message(conn: Any) -> None:
    """A rank killed while sending a checkpoint: the length of a 1 MiB message, part of it, gone."""
    os.write(conn.fileno(), (1 << 20).to_bytes(4, "big") + b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_rank_killed_halfway_through_an_event_reads_as_its_end_not_a_wait() -> None:
    """The killed-rank e2e test once hung for ever in the parent: the rank died halfway
    through a checkpoint on a queue whose other write end the parent held, so the reader
    waited for the rest. Now its pipe has one writer, the child, and the torn event ends in
    EOFError (then RankFailed)."""
    import multiprocessing as mp

    from bcai.training.dp_job import receive_event

    ctx = mp.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_die_halfway_through_a_message, args=(writer,))
    proc.start()
    writer.close()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL

    async def read() -> Any:
        return await asyncio.wait_for(asyncio.to_thread(receive_event, reader, 5.0), 20)

    with pytest.raises(EOFError):
        asyncio.run(read())
    reader.close()


def test_receive_event_says_none_when_the_child_is_quiet_and_delivers_what_it_sent() -> None:
    import multiprocessing as mp

    from bcai.training.dp_job import receive_event

    reader, writer = mp.get_context("spawn").Pipe(duplex=False)
    assert receive_event(reader, 0.01) is None
    writer.send(("alive",))
    writer.send(("checkpoint", 5, b"state", 320))
    writer.close()
    assert receive_event(reader, 1.0) == ("alive",)
    assert receive_event(reader, 1.0) == ("checkpoint", 5, b"state", 320)
    with pytest.raises(EOFError):
        receive_event(reader, 1.0)
