"""Federated rounds without a coordinator (shell).

Every worker of a job runs `run_federated_worker`. Each round it trains the current
global model on its shard, publishes its signed parameters on the job's channel, gathers
the round's updates from the other workers, and aggregates them itself with the job's
rule. Aggregation is a pure function of the same inputs in the same order (sorted by
worker address), so every honest worker ends each round with bitwise the same global
model: the round's checkpoint, whose hash every worker records. At the end each worker
submits that model's CID; the evaluators then see one model, and a worker that submits
anything else has provably deviated.

A worker whose update does not arrive within the round's timeout is dropped from the
live set; from the next round the survivors' shards (`compute_shard`) cover its data,
starting from the last aggregated model, so training resumes from the last checkpoint.
Updates are signed (domain "fl-update", the chain id) by worker keys; an update from an
address that is not one of the job's workers, or with a bad signature, is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol, Sequence

import torch

from bcai.crypto import Address, Cid, PrivateKey, PublicKey
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidRoundUpdate, RoundTimeout
from bcai.training.aggregation import AggregationRule, FedAvg, Krum, Median, TrimmedMean, compute_outlier_flags
from bcai.training.data import Dataset, compute_shard
from bcai.training.updates import ModelUpdate
from bcai.vm.interpreter import Session
from bcai.vm.loop import evaluate, train_epochs
from bcai.vm.tensors import compute_tensors_hash, decode_tensors, encode_tensors

UPDATE_DOMAIN = "fl-update"
MAX_UPDATE_BYTES = 256 * 1024 * 1024


def make_rule(name: str, n_workers: int) -> AggregationRule:
    """The aggregation rule a job spec names, sized for `n_workers`."""
    if name == "fedavg":
        return FedAvg()
    if name == "median":
        return Median()
    if name == "trimmed_mean":
        return TrimmedMean(beta=0.2 if n_workers >= 5 else 1 / max(n_workers, 3))
    if name == "krum":
        return Krum(f=max(0, (n_workers - 3) // 2))
    raise InvalidRoundUpdate(f"unknown aggregation rule {name!r}")


@dataclass(frozen=True)
class RoundUpdate:
    job_id: bytes
    round_index: int
    worker: PublicKey
    samples: int
    params: bytes  # canonical tensor bytes
    signature: bytes

    @property
    def address(self) -> Address:
        return self.worker.address

    def to_bytes(self) -> bytes:
        return encode([self._signed_payload(self.job_id, self.round_index, self.worker, self.samples, self.params),
                       self.signature])

    @staticmethod
    def _signed_payload(job_id: bytes, round_index: int, worker: PublicKey, samples: int, params: bytes) -> bytes:
        return encode([job_id, round_index, worker.raw, samples, params])

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, job_id: bytes, round_index: int, samples: int,
               params: bytes) -> RoundUpdate:
        payload = cls._signed_payload(job_id, round_index, key.public_key, samples, params)
        return cls(job_id, round_index, key.public_key, samples, params, key.sign(UPDATE_DOMAIN, chain_id, payload))

    @classmethod
    def from_bytes(cls, data: bytes, chain_id: str) -> RoundUpdate:
        """Decode and verify the signature; raise `InvalidRoundUpdate` on anything wrong."""
        if len(data) > MAX_UPDATE_BYTES:
            raise InvalidRoundUpdate(f"round update over {MAX_UPDATE_BYTES} bytes")
        try:
            payload, signature = decode(data)
            job_id, round_index, worker, samples, params = decode(payload)
            key = PublicKey(worker)
            if not (type(job_id) is bytes and type(round_index) is int and type(samples) is int
                    and type(params) is bytes and type(signature) is bytes and samples > 0 and round_index >= 0):
                raise ValueError("field types")
            key.verify(UPDATE_DOMAIN, chain_id, payload, signature)
        except (BcaiError, ValueError, TypeError) as exc:
            raise InvalidRoundUpdate(f"bad round update: {exc}") from None
        return cls(job_id, round_index, key, samples, params, signature)


class RoundChannel(Protocol):
    """How a job's workers exchange round updates (the job's gossip topic, or memory)."""

    async def publish(self, update: RoundUpdate) -> None: ...

    async def gather(self, round_index: int, workers: Sequence[Address], timeout_s: float) -> dict[Address, RoundUpdate]:
        """Updates for `round_index` from `workers` that arrive before the timeout."""
        ...


class UpdateBoard:
    """Round updates received so far, checked against the job and its worker set.

    Channels feed it raw messages (`offer`); `gather` waits until all expected workers'
    updates for a round are here, or the timeout passes.
    """

    def __init__(self, chain_id: str, job_id: bytes, workers: Sequence[Address]) -> None:
        self.chain_id = chain_id
        self.job_id = job_id
        self.workers = frozenset(workers)
        self.updates: dict[tuple[int, Address], RoundUpdate] = {}
        self.rejected = 0
        self._changed = asyncio.Event()

    def offer(self, data: bytes) -> RoundUpdate | None:
        try:
            update = RoundUpdate.from_bytes(data, self.chain_id)
            if update.job_id != self.job_id:
                raise InvalidRoundUpdate("update for another job")
            if update.address not in self.workers:
                raise InvalidRoundUpdate(f"{update.address} is not a worker of this job")
        except InvalidRoundUpdate:
            self.rejected += 1
            return None
        self.updates.setdefault((update.round_index, update.address), update)  # first one counts
        self._changed.set()
        return update

    async def gather(self, round_index: int, workers: Sequence[Address], timeout_s: float) -> dict[Address, RoundUpdate]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = {w: self.updates[(round_index, w)] for w in workers if (round_index, w) in self.updates}
            remaining = deadline - loop.time()
            if len(found) == len(workers) or remaining <= 0:
                return found
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


class MemoryChannel:
    """All workers in one process share one board (tests, local runs)."""

    def __init__(self, board: UpdateBoard) -> None:
        self.board = board

    async def publish(self, update: RoundUpdate) -> None:
        self.board.offer(update.to_bytes())

    async def gather(self, round_index: int, workers: Sequence[Address], timeout_s: float) -> dict[Address, RoundUpdate]:
        return await self.board.gather(round_index, workers, timeout_s)


@dataclass
class RoundReport:
    round_index: int
    workers: list[str]
    checkpoint: str  # CID of the aggregated model after this round
    flagged: list[str] = field(default_factory=list)  # workers whose update was an outlier
    loss: float = 0.0  # the aggregated model on this worker's shard
    accuracy: float = 0.0


@dataclass
class FederatedResult:
    model: bytes  # canonical tensor bytes of the final parameters
    model_cid: Cid
    samples_processed: int
    rounds: list[RoundReport]


def _as_update(update: RoundUpdate) -> ModelUpdate:
    try:
        return ModelUpdate(decode_tensors(update.params), update.samples)
    except BcaiError as exc:
        raise InvalidRoundUpdate(f"update from {update.address}: {exc}") from None


async def run_federated_worker(
    *,
    key: PrivateKey,
    chain_id: str,
    job_id: bytes,
    workers: Sequence[Address],
    session: Session,
    data: Dataset,
    rounds: int,
    local_epochs: int,
    rule_name: str,
    channel: RoundChannel,
    seed: int,
    round_timeout_s: float = 60.0,
    transform: Callable[[dict[str, torch.Tensor], int], dict[str, torch.Tensor]] | None = None,
    on_round: Callable[[RoundReport], Awaitable[None] | None] | None = None,
    start_round: int = 0,
) -> FederatedResult:
    """Train as one worker of a federated job; return the final (agreed) model.

    `transform` lets a worker change what it publishes (differential privacy, say; the
    tests use it to play a poisoning worker). Training runs in a thread so the event loop
    keeps serving the network. `start_round` > 0 resumes a job: the caller has loaded the
    checkpoint of round `start_round - 1` into `session` (`bcai.training.checkpoints`).
    """
    me = key.address
    live = sorted(workers, key=lambda a: a.raw)
    if me not in live:
        raise InvalidRoundUpdate(f"{me} is not a worker of job {job_id.hex()[:16]}")
    samples_processed = 0
    reports: list[RoundReport] = []
    for round_index in range(start_round, rounds):
        shard = data.subset(compute_shard(len(data), [str(w) for w in live], str(me), round_index, seed))
        await asyncio.to_thread(train_epochs, session, shard.x, shard.y, epochs=local_epochs,
                                          seed=seed + round_index)
        samples_processed += len(shard) * local_epochs
        params = session.get_parameters()
        if transform is not None:
            params = transform(params, round_index)
        await channel.publish(RoundUpdate.create(key, chain_id, job_id, round_index, len(shard),
                                                 encode_tensors(params)))
        got = await channel.gather(round_index, live, round_timeout_s)
        if me not in got:
            raise RoundTimeout(f"round {round_index}: our own update never came back")
        live = sorted(got, key=lambda a: a.raw)
        updates = [_as_update(got[w]) for w in live]
        rule = make_rule(rule_name, len(live))
        aggregate = rule.aggregate(updates)
        flags = compute_outlier_flags(updates) if len(updates) >= 3 else []
        session.set_parameters(aggregate)
        loss, accuracy = await asyncio.to_thread(evaluate, session, shard.x, shard.y)
        report = RoundReport(round_index, [str(w) for w in live], str(compute_tensors_hash(session.get_parameters())),
                             sorted({str(live[f.index]) for f in flags}), loss, accuracy)
        reports.append(report)
        if on_round is not None:
            maybe = on_round(report)
            if asyncio.iscoroutine(maybe):
                await maybe
    model = encode_tensors(session.get_parameters())
    return FederatedResult(model, compute_tensors_hash(session.get_parameters()), samples_processed, reports)
