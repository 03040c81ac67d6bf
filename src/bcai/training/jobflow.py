"""The job flow around training: client, worker and evaluator agents (shell).

Each agent holds its own key and talks to the chain through a node's REST API
(`bcai.sdk.Client`) and to the job's other participants through the job channel (the
job's gossip topic; in one process, memory). The chain is the only authority: who the
workers and evaluators are, and what is paid, is read from it.

1. The client encrypts the train and test splits with fresh keys, uploads the ciphertexts
   and the job spec as artifacts, and posts the job (budget in escrow).
2. Workers volunteer (their job stake is locked). When the job is assigned, the client
   seals the train key to each worker and the test key to each evaluator
   (`KeyRelease`, signed, on the job channel).
3. Workers decrypt their data and train: federated rounds (`federated.py`; each round's
   checkpoint committed on chain and a restarted worker resuming from it:
   `checkpoints.py`), synchronous data-parallel training (`dp_job.py`, paradigm
   `data_parallel`), or, in competitive jobs, each worker its own model with its grid
   point of the search (`competitive.py`); they upload the model and submit its CID.
4. Evaluators decrypt the test split, fetch each submitted model, evaluate it and attest;
   the ledger completes the job and pays 90 / 5 / 5, or fails it and refunds the client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

from bcai.crypto import CODEC_DAG_CBOR, Address, Cid, PrivateKey, PublicKey, open_sealed, seal
from bcai.crypto.objects import compute_artifact_cid
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidJobDocument, InvalidRoundUpdate, JobFlowError, JobTimeout
from bcai.ledger import JOB_STATES, PostJob
from bcai.ledger.types import Amount, Bps, Height
from bcai.sdk import Client
from bcai.training.data import (
    Dataset, decode_dataset, decrypt_artifact, encode_dataset, encrypt_artifact, new_data_key,
)
from bcai.training.checkpoints import checkpoint_recorder, load_checkpoint
from bcai.training.dp_job import run_data_parallel_job
from bcai.training.federated import FederatedResult, RoundReport, RoundUpdate, UpdateBoard, run_federated_worker
from bcai.training.spec import JobSpec
from bcai.verify.evaluation import Evaluation, evaluate_model
from bcai.vm.frontends.bml import from_bml
from bcai.vm.interpreter import VM

KEYS_DOMAIN = "job-keys"
POLL_S = 0.2
MAX_UNROUTED = 100_000  # other participant messages a job inbox keeps (data-parallel rendezvous, checkpoints)


# --- the job channel -------------------------------------------------------------------


class JobChannel(Protocol):
    """Best-effort broadcast to the job's participants (its gossip topic)."""

    async def publish(self, data: bytes) -> None: ...
    def subscribe(self, handler: Callable[[bytes], None]) -> None: ...
    def close(self) -> None: ...


ChannelFactory = Callable[[Client, str], JobChannel]  # (the agent's client, job id) -> its channel


class HttpJobChannel:
    """The job channel through the agent's own node: messages are signed `JobMessage`s
    that the node checks and relays on the job's gossip topic (`bcai.node.job_relay`);
    what the node holds for the job is polled and handed to the subscribers."""

    def __init__(self, client: Client, job_id: str, poll_s: float = POLL_S) -> None:
        self.client, self.job_id, self.poll_s = client, job_id, poll_s
        self._handlers: list[Callable[[bytes], None]] = []
        self._next = 0
        self._task: asyncio.Task[None] | None = None

    async def publish(self, data: bytes) -> None:
        await _call(self.client.post_job_message, self.job_id, data)

    def subscribe(self, handler: Callable[[bytes], None]) -> None:
        self._handlers.append(handler)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            try:
                messages, self._next = await _call(self.client.job_messages, self.job_id, self._next)
            except BcaiError:
                messages = []  # the node is busy or restarting: ask again
            for _, payload in messages:
                for handler in list(self._handlers):
                    handler(payload)
            await asyncio.sleep(self.poll_s)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def http_channels(client: Client, job_id: str) -> JobChannel:
    """The `ChannelFactory` of agents that talk through their node (the network default)."""
    return HttpJobChannel(client, job_id)


class MemoryJobChannel:
    """A hub in this process: every endpoint sees every message (tests, single-process
    runs). `as_factory` gives each agent its own endpoint on the hub."""

    def __init__(self) -> None:
        self._handlers: list[Callable[[bytes], None]] = []

    async def publish(self, data: bytes) -> None:
        for handler in list(self._handlers):
            handler(data)

    def as_factory(self) -> ChannelFactory:
        return lambda client, job_id: _MemoryEndpoint(self)


class _MemoryEndpoint:
    def __init__(self, hub: MemoryJobChannel) -> None:
        self.hub = hub
        self.mine: list[Callable[[bytes], None]] = []

    async def publish(self, data: bytes) -> None:
        await self.hub.publish(data)

    def subscribe(self, handler: Callable[[bytes], None]) -> None:
        self.mine.append(handler)
        self.hub._handlers.append(handler)

    def close(self) -> None:
        for handler in self.mine:
            self.hub._handlers.remove(handler)
        self.mine.clear()


@dataclass(frozen=True)
class KeyRelease:
    """The client's data keys, each sealed to one participant's node key."""

    job_id: bytes
    split: str  # "train" or "test"
    sealed: dict[bytes, bytes]  # participant address -> sealed 32-byte key
    client: PublicKey
    signature: bytes

    @staticmethod
    def _payload(job_id: bytes, split: str, sealed: dict[bytes, bytes], client: PublicKey) -> bytes:
        return encode(["keys", job_id, split, sealed, client.raw])

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, job_id: bytes, split: str,
               recipients: list[PublicKey], data_key: bytes) -> KeyRelease:
        sealed = {r.address.raw: seal(r, data_key) for r in recipients}
        payload = cls._payload(job_id, split, sealed, key.public_key)
        return cls(job_id, split, sealed, key.public_key, key.sign(KEYS_DOMAIN, chain_id, payload))

    def to_bytes(self) -> bytes:
        return encode([self._payload(self.job_id, self.split, self.sealed, self.client), self.signature])

    @classmethod
    def from_bytes(cls, data: bytes, chain_id: str) -> KeyRelease:
        try:
            payload, signature = decode(data)
            tag, job_id, split, sealed, client = decode(payload)
            if tag != "keys" or split not in ("train", "test") or type(sealed) is not dict:
                raise ValueError("not a key release")
            key = PublicKey(client)
            key.verify(KEYS_DOMAIN, chain_id, payload, signature)
        except (BcaiError, ValueError, TypeError) as exc:
            raise InvalidRoundUpdate(f"bad key release: {exc}") from None
        return cls(job_id, split, sealed, key, signature)

    def open_for(self, key: PrivateKey) -> bytes:
        box = self.sealed.get(key.address.raw)
        if box is None:
            raise JobFlowError(f"no {self.split} key sealed to {key.address}")
        return open_sealed(key, box)


def make_hello(key: PublicKey) -> bytes:
    """A participant's announcement of its public key on the job channel (the client seals
    the data keys to these; a key only counts if it hashes to a participant's address)."""
    return encode(["hello", key.raw])


HELLO_EVERY_S = 2.0


async def say_hello_until(channel: JobChannel, key: PublicKey, done: Callable[[], bool],
                          every_s: float = HELLO_EVERY_S) -> None:
    """Say hello now, then again every `every_s` until `done()`. Gossip is best effort: a
    node that joins the job's topic a moment after a hello was published (its subscription
    had not reached the publishing node yet) never sees it, so a single hello can be lost
    and the client would wait for it forever."""
    while True:
        try:
            await channel.publish(make_hello(key))
        except BcaiError:
            pass  # the node is busy, or has not committed the job yet: try again next time
        await asyncio.sleep(every_s)
        if done():
            return


def seen_key_release(messages: list[bytes]) -> Callable[[], bool]:
    """A check for `say_hello_until`: has a key release arrived in `messages` (a growing
    list)? Each message is looked at once."""
    scanned = [0]

    def check() -> bool:
        while scanned[0] < len(messages):
            if _is_key_release(messages[scanned[0]]):
                return True
            scanned[0] += 1
        return False

    return check


def read_hello(data: bytes) -> PublicKey | None:
    try:
        tag, raw = decode(data)
        return PublicKey(raw) if tag == "hello" else None
    except (BcaiError, ValueError, TypeError):
        return None


async def gather_keys(channel_keys: dict[Address, PublicKey], wanted: list[Address], timeout_s: float) -> list[PublicKey]:
    """Wait until every wanted participant has said hello; their public keys, in order."""
    deadline = time.monotonic() + timeout_s
    while any(a not in channel_keys for a in wanted):
        if time.monotonic() > deadline:
            missing = [str(a) for a in wanted if a not in channel_keys]
            raise JobTimeout(f"no hello from {missing} within {timeout_s} s")
        await asyncio.sleep(POLL_S)
    return [channel_keys[a] for a in wanted]


def _is_key_release(data: bytes) -> bool:
    try:
        payload, _ = decode(data)
        return decode(payload)[0] == "keys"
    except (BcaiError, ValueError, TypeError, IndexError, KeyError):
        return False


class JobInbox:
    """What one participant has received on the job channel: key releases, round updates,
    and (`unrouted`, in arrival order) the other messages but hellos, for the paradigm's
    own board (data-parallel rendezvous and checkpoints)."""

    def __init__(self, chain_id: str, job_id: bytes, client: Address, workers: list[Address]) -> None:
        self.chain_id = chain_id
        self.job_id = job_id
        self.client = client
        self.board = UpdateBoard(chain_id, job_id, workers)
        self.keys: dict[str, KeyRelease] = {}
        self.unrouted: list[bytes] = []
        self._keys_changed = asyncio.Event()

    def offer(self, data: bytes) -> None:
        if _is_key_release(data):
            try:
                release = KeyRelease.from_bytes(data, self.chain_id)
            except InvalidRoundUpdate:
                return
            if release.job_id == self.job_id and release.client.address == self.client:
                self.keys.setdefault(release.split, release)
                self._keys_changed.set()
        elif self.board.offer(data) is None and read_hello(data) is None and len(self.unrouted) < MAX_UNROUTED:
            self.unrouted.append(data)

    async def wait_key(self, split: str, timeout_s: float) -> KeyRelease:
        deadline = time.monotonic() + timeout_s
        while split not in self.keys:
            if time.monotonic() > deadline:
                raise JobTimeout(f"no {split} key released within {timeout_s} s")
            self._keys_changed.clear()
            try:
                await asyncio.wait_for(self._keys_changed.wait(), POLL_S * 5)
            except asyncio.TimeoutError:
                pass
        return self.keys[split]


class ChannelRounds:
    """The federated `RoundChannel` over a job channel and an inbox."""

    def __init__(self, channel: JobChannel, inbox: JobInbox) -> None:
        self.channel, self.inbox = channel, inbox

    async def publish(self, update: RoundUpdate) -> None:
        await self.channel.publish(update.to_bytes())

    async def gather(self, round_index: int, workers: Any, timeout_s: float) -> dict[Address, RoundUpdate]:
        return await self.inbox.board.gather(round_index, workers, timeout_s)


# --- chain helpers ---------------------------------------------------------------------


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def wait_job_state(client: Client, job_id: str, states: set[str], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            job = await _call(client.job, job_id)
        except BcaiError:
            job = None
        if job is not None and job["state"] in states:
            return job
        if time.monotonic() > deadline:
            state = job["state"] if job else "unknown"
            raise JobTimeout(f"job {job_id[:16]} is {state}, not {sorted(states)}, after {timeout_s} s")
        await asyncio.sleep(POLL_S)


async def send_and_wait(client: Client, send: Callable[[], str], timeout_s: float = 60.0) -> dict[str, Any]:
    tx_hash = await _call(send)
    return await _call(client.wait_for_tx, tx_hash, timeout_s)


# --- the client ----------------------------------------------------------------------


@dataclass
class PreparedJob:
    spec: JobSpec
    artifacts: dict[str, bytes]  # cid -> bytes to upload
    train_key: bytes
    test_key: bytes


def prepare_job(name: str, bml: str, train: Dataset, test: Dataset, *, rounds: int, local_epochs: int,
                aggregation: str = "fedavg", target_accuracy_bps: int = 9700, paradigm: str = "federated",
                search: dict[str, list[str]] | None = None, checkpoint_every: int = 0) -> PreparedJob:
    train_key, test_key = new_data_key(), new_data_key()
    train_blob = encrypt_artifact(encode_dataset(train), train_key)
    test_blob = encrypt_artifact(encode_dataset(test), test_key)
    spec = JobSpec(name=name, bml=bml, train_cid=str(compute_artifact_cid(train_blob)),
                   test_cid=str(compute_artifact_cid(test_blob)),
                   train_samples=len(train), rounds=rounds, local_epochs=local_epochs, aggregation=aggregation,
                   target_accuracy_bps=target_accuracy_bps, paradigm=paradigm, search=search or {},
                   checkpoint_every=checkpoint_every)
    spec_bytes = spec.to_bytes()
    artifacts = {spec.train_cid: train_blob, spec.test_cid: test_blob, str(spec.cid): spec_bytes}
    return PreparedJob(spec, artifacts, train_key, test_key)


async def run_client(client: Client, job: PreparedJob, channels: ChannelFactory, *, budget: int, worker_stake: int,
                     required_evaluators: int, min_workers: int, max_workers: int, deadline_blocks: int,
                     agreement_threshold_bps: int = 100, timeout_s: float = 600.0,
                     on_event: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Post the job, release the data keys when it is assigned, wait for the outcome."""
    note = on_event or (lambda *_: None)
    key = client.key
    assert key is not None
    for cid, data in job.artifacts.items():
        uploaded = await _call(client.upload, data, Cid.parse(cid).codec)
        if str(uploaded) != cid:
            raise InvalidJobDocument(f"artifact CID mismatch for {cid}")
    status = await _call(client.status)
    body = PostJob(spec_cid=job.spec.cid, budget=Amount(budget), required_evaluators=required_evaluators,
                   agreement_threshold_bps=Bps(agreement_threshold_bps),
                   deadline_height=Height(int(status["height"]) + deadline_blocks), min_workers=min_workers,
                   max_workers=max_workers, worker_stake=Amount(worker_stake),
                   mode="competitive" if job.spec.paradigm == "competitive" else "federated")
    receipt = await send_and_wait(client, lambda: client.post_job(body))
    job_id = str(receipt["hash"])
    note("posted", {"job_id": job_id, "height": receipt.get("height")})
    heard: dict[Address, PublicKey] = {}

    def on_message(data: bytes) -> None:
        announced = read_hello(data)
        if announced is not None:
            heard.setdefault(announced.address, announced)

    channel = channels(client, job_id)
    channel.subscribe(on_message)
    try:
        assigned = await wait_job_state(client, job_id, {"assigned", "training", "expired", "cancelled"}, timeout_s)
        if assigned["state"] not in ("assigned", "training"):
            return assigned
        note("assigned", assigned)
        chain_id = client.chain_id
        workers = await gather_keys(heard, [Address.parse(w) for w in assigned["workers"]], timeout_s)
        evaluators = await gather_keys(heard, [Address.parse(e) for e in assigned["evaluators"]], timeout_s)
        job_bytes = bytes.fromhex(job_id)
        await channel.publish(KeyRelease.create(key, chain_id, job_bytes, "train", workers, job.train_key).to_bytes())
        await channel.publish(KeyRelease.create(key, chain_id, job_bytes, "test", evaluators, job.test_key).to_bytes())
    finally:
        channel.close()
    note("keys_released", {"workers": len(workers), "evaluators": len(evaluators)})
    final = await wait_job_state(client, job_id, {"completed", "failed", "expired"}, timeout_s)
    note(final["state"], final)
    return final


# --- workers -------------------------------------------------------------------------


async def find_open_job(client: Client, spec_cid: str | None, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        for job in await _call(client.jobs):
            ours = client.key is not None and str(client.key.address) in job["workers"]
            if (job["state"] in ("open", "assigned") or ours and job["state"] == "training") \
                    and (spec_cid is None or job["spec_cid"] == spec_cid):
                return job
        if time.monotonic() > deadline:
            raise JobTimeout("no open job appeared")
        await asyncio.sleep(POLL_S)


async def run_worker(client: Client, channels: ChannelFactory, *, spec_cid: str | None = None, timeout_s: float = 600.0,
                     round_timeout_s: float = 120.0, on_round: Callable[[RoundReport], Any] | None = None,
                     transform: Any = None, lazy: bool = False,
                     on_event: Callable[[str, dict[str, Any]], None] | None = None) -> FederatedResult | None:
    """Volunteer for a job, train it federatedly with the other workers, submit the model.

    `lazy=True` plays a worker that skips training and submits the untrained model (for
    tests of the evaluators' and ledger's defences; never a default).
    """
    key = client.key
    assert key is not None
    job = await find_open_job(client, spec_cid, timeout_s)
    job_id = job["job_id"]
    spec = JobSpec.from_bytes(await _call(client.download, job["spec_cid"]))
    note = on_event or (lambda *_: None)
    inbox_holder: list[JobInbox] = []
    early: list[bytes] = []

    def deliver(data: bytes) -> None:
        if inbox_holder:
            inbox_holder[0].offer(data)
        else:
            early.append(data)

    channel = channels(client, job_id)
    channel.subscribe(deliver)  # before volunteering: our node joins the job's topic early
    try:
        return await _work(client, channel, job_id, spec, deliver_to=inbox_holder, early=early, note=note,
                           timeout_s=timeout_s, round_timeout_s=round_timeout_s, on_round=on_round,
                           transform=transform, lazy=lazy)
    finally:
        channel.close()


async def _work(client: Client, channel: JobChannel, job_id: str, spec: JobSpec, *, deliver_to: list[JobInbox],
                early: list[bytes], note: Callable[[str, dict[str, Any]], None], timeout_s: float,
                round_timeout_s: float, on_round: Any, transform: Any, lazy: bool) -> FederatedResult | None:
    key = client.key
    assert key is not None
    if str(key.address) in (await _call(client.job, job_id))["workers"]:
        note("rejoined", {"worker": str(key.address)})  # a restarted worker: resumes from the checkpoint
    else:
        receipt = await send_and_wait(client, lambda: client.volunteer(job_id))
        note("volunteered", {"worker": str(key.address), "height": receipt.get("height")})
    # so the client can seal the train key to us; repeated until a key release arrives
    early_key = seen_key_release(early)
    hello = asyncio.create_task(say_hello_until(channel, key.public_key,
                                                lambda: early_key() or bool(deliver_to and deliver_to[0].keys)))
    try:
        return await _train(client, channel, job_id, spec, key, deliver_to, early, note, timeout_s,
                            round_timeout_s, on_round, transform, lazy)
    finally:
        hello.cancel()


async def _train(client: Client, channel: JobChannel, job_id: str, spec: JobSpec, key: PrivateKey,
                 deliver_to: list[JobInbox], early: list[bytes], note: Callable[[str, dict[str, Any]], None],
                 timeout_s: float, round_timeout_s: float, on_round: Any, transform: Any,
                 lazy: bool) -> FederatedResult | None:
    """The worker after volunteering: wait for assignment and the key, train, submit."""
    assigned = await wait_job_state(client, job_id, {"assigned", "training", "evaluating", "expired"}, timeout_s)
    if assigned["state"] == "expired":
        return None
    workers = [Address.parse(w) for w in assigned["workers"]]
    inbox = JobInbox(client.chain_id, bytes.fromhex(job_id), Address.parse(assigned["client"]), workers)
    deliver_to.append(inbox)
    for data in early:
        inbox.offer(data)
    train_key = (await inbox.wait_key("train", timeout_s)).open_for(key)
    train = decode_dataset(decrypt_artifact(await _call(client.download, spec.train_cid), train_key))
    if spec.paradigm == "competitive":  # each worker its own model: bcai.training.competitive
        from bcai.training.competitive import train_and_submit_competitive
        return await train_and_submit_competitive(client, job_id, spec, key, workers, train, note)  # type: ignore[return-value]
    program = from_bml(spec.bml)
    session = VM(deterministic=True).load(program)
    if lazy:
        result = FederatedResult(*_untrained(session), samples_processed=len(train), rounds=[])
    elif spec.paradigm == "data_parallel":  # its rounds are the rendezvous generations
        result = await run_data_parallel_job(  # type: ignore[assignment]
            key=key, chain_id=client.chain_id, job_id=bytes.fromhex(job_id), workers=workers, channel=channel,
            messages=inbox.unrouted, store=client, bml=spec.bml, data=train,
            epochs=spec.rounds * spec.local_epochs, checkpoint_every=spec.checkpoint_every,
            timeout_s=round_timeout_s, on_event=note,
            record=lambda step, cid: client.wait_for_tx(client.record_checkpoint(job_id, step, cid), 60.0))
    else:
        # round checkpoints on chain: resume from the latest, record ours (bcai.training.checkpoints)
        start_round = await _call(load_checkpoint, client, await _call(client.job, job_id), session)
        result = await run_federated_worker(
            key=key, chain_id=client.chain_id, job_id=bytes.fromhex(job_id), workers=workers, session=session,
            data=train, rounds=spec.rounds, local_epochs=spec.local_epochs, rule_name=spec.aggregation,
            channel=ChannelRounds(channel, inbox), seed=program.seed, round_timeout_s=round_timeout_s,
            transform=transform, on_round=checkpoint_recorder(client, job_id, session, spec.rounds, on_round, note),
            start_round=start_round)
    # canonical CBOR tensor bytes: named by their dag-cbor CID, the same as the round checkpoints
    uploaded = await _call(client.upload, result.model, CODEC_DAG_CBOR)
    receipt = await send_and_wait(client, lambda: client.submit_result(job_id, uploaded, result.samples_processed,
                                                                       {"rounds": len(result.rounds)}))
    note("submitted", {"worker": str(key.address), "model_cid": str(uploaded), "height": receipt.get("height")})
    return result


def _untrained(session: Any) -> tuple[bytes, Cid]:
    from bcai.vm.tensors import compute_tensors_hash, encode_tensors

    params = session.get_parameters()
    return encode_tensors(params), compute_tensors_hash(params)


# --- evaluators ----------------------------------------------------------------------


async def run_evaluator(client: Client, channels: ChannelFactory, *, job_id: str | None = None,
                        timeout_s: float = 600.0, grace_s: float = 10.0,
                        on_event: Callable[[str, dict[str, Any]], None] | None = None) -> list[Evaluation]:
    """Wait for a job of ours to reach evaluation, evaluate every submitted model, attest.

    The evaluator attests about the model most workers submitted (in a federated job
    every honest worker submits the same agreed model), accepting it when its test
    accuracy reaches the spec's target.
    """
    key = client.key
    assert key is not None
    me = str(key.address)
    deadline = time.monotonic() + timeout_s
    while job_id is None:
        for job in await _call(client.jobs):
            if me in job["evaluators"] and job["state"] not in ("completed", "failed", "expired", "cancelled"):
                job_id = job["job_id"]
        if time.monotonic() > deadline:
            raise JobTimeout("no job assigned to this evaluator")
        if job_id is None:
            await asyncio.sleep(POLL_S)
    received: list[bytes] = []
    channel = channels(client, job_id)
    channel.subscribe(received.append)  # our node joins the job's topic before the keys are released
    # so the client can seal the test key to us; repeated until a key release arrives
    hello = asyncio.create_task(say_hello_until(channel, key.public_key, seen_key_release(received)))
    try:
        return await _evaluate(client, channel, job_id, received, timeout_s=timeout_s, grace_s=grace_s,
                               on_event=on_event)
    finally:
        hello.cancel()
        channel.close()


async def _evaluate(client: Client, channel: JobChannel, job_id: str, received: list[bytes], *, timeout_s: float,
                    grace_s: float, on_event: Callable[[str, dict[str, Any]], None] | None) -> list[Evaluation]:
    key = client.key
    assert key is not None
    seen = await wait_job_state(client, job_id, set(JOB_STATES), timeout_s)  # once our node has the job
    # a competitive job's models are judged as they arrive (a silent worker cannot hold them back)
    judging = {"training", "evaluating"} if seen["mode"] == "competitive" else {"evaluating"}
    job = await wait_job_state(client, job_id, judging | {"completed", "failed", "expired"}, timeout_s)
    if job["state"] not in judging:
        return []
    grace_end = time.monotonic() + (grace_s if seen["mode"] != "competitive" else 0)
    while len(job["results"]) < len(job["workers"]) and time.monotonic() < grace_end:
        await asyncio.sleep(POLL_S)  # give every worker the chance to submit before judging
        job = await _call(client.job, job_id)
    spec = JobSpec.from_bytes(await _call(client.download, job["spec_cid"]))
    inbox = JobInbox(client.chain_id, bytes.fromhex(job_id), Address.parse(job["client"]), [])
    for data in received:
        inbox.offer(data)
    channel.subscribe(inbox.offer)
    test_key = (await inbox.wait_key("test", timeout_s)).open_for(key)
    test = decode_dataset(decrypt_artifact(await _call(client.download, spec.test_cid), test_key))
    if spec.paradigm == "competitive":  # every model judged on its own: bcai.training.competitive
        from bcai.training.competitive import evaluate_competitive
        return await evaluate_competitive(client, job_id, spec, test, timeout_s=timeout_s,
                                          note=on_event or (lambda *_: None))
    program = from_bml(spec.bml)
    votes: dict[str, int] = {}
    for result in job["results"].values():
        votes[result["model_cid"]] = votes.get(result["model_cid"], 0) + 1
    evaluations: dict[str, Evaluation] = {}
    for cid in sorted(votes):
        model = await _call(client.download, cid)
        try:
            evaluations[cid] = await asyncio.to_thread(evaluate_model, program, model, test)
        except BcaiError:
            continue  # a malformed model cannot be accepted
    chosen = max(sorted(votes), key=lambda c: votes[c])
    evaluation = evaluations.get(chosen)
    accuracy_bps = evaluation.accuracy_bps if evaluation else 0
    accept = evaluation is not None and accuracy_bps >= spec.target_accuracy_bps
    receipt = await send_and_wait(client, lambda: client.attest(job_id, Cid.parse(chosen), accuracy_bps, accept))
    (on_event or (lambda *_: None))("attested", {"evaluator": str(key.address), "accuracy_bps": accuracy_bps,
                                                 "accept": accept, "height": receipt.get("height")})
    return list(evaluations.values())
