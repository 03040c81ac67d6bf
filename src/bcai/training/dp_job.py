"""Data-parallel jobs on the job flow (shell): rendezvous on the job channel, one child
process per rank, checkpoints in the content store, a new generation after a lost rank.

Every worker of a `data_parallel` job runs `run_data_parallel_job` after decrypting its
train split. Work goes in *generations*:

1. **Rendezvous.** Each worker publishes a signed `join` for the generation (repeated until
   the generation starts). The lowest address among the joined workers is the leader: once
   every expected worker has joined (generation 0: all of the job's workers; later: the
   previous generation's members) or the join window has passed, it opens a `TCPStore`
   (port chosen by the OS) and publishes a signed `store` message: host and port, the
   members (sorted addresses) and the checkpoint to resume from. A member's rank is the
   index of its address among the members, so with everyone present rank = index among
   the job's workers sorted. A worker left out of a started generation stops.
2. **Training.** Each member spawns one child process (multiprocessing spawn: a process
   holds one torch.distributed group, and several agents may share a process) that joins
   the gloo group through the store and runs `run_data_parallel_worker`: every global
   batch is cut among the ranks (`compute_rank_slice`), gradients are all-reduced each
   step, and every rank ends with the identical model. The parent relays the child's
   progress (a heartbeat every second); a child that dies, or stays silent for half the
   collective timeout, fails this worker with `RankFailed`; the parent kills the
   child on every exit path.
3. **Checkpoints.** Every `checkpoint_every` global steps the child hands the full VM state
   (parameters, buffers, optimizer state) to its parent; the leader uploads
   `{"step", "state"}` (dag-cbor) to the content store and announces its CID with a signed
   `checkpoint` message. Every member keeps the last few locally (the same bytes on every
   rank).
4. **A lost rank.** A dead or silent peer makes the collectives fail with `JobTimeout`
   within the gloo timeout; the survivors start generation g + 1 among themselves (a
   worker whose own child died publishes `leave` and stops with `RankFailed`; a member
   that sees another member join or leave g + 1 stops its own child at once rather than
   wait out its collective timeout, so the survivors rejoin together). The new leader
   resumes from the highest-step checkpoint announced by a leader of a generation
   it took part in; the global batches are the same, only cut among fewer ranks.

The final model is the same on every surviving rank, so every worker submits the same
CID and the ledger's rule (one accepted model, 90% split by samples) applies unchanged.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue as queue_module
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from bcai.crypto import CODEC_DAG_CBOR, Address, Cid, PrivateKey, PublicKey
from bcai.crypto.objects import compute_artifact_cid
from bcai.encoding import decode, encode
from bcai.errors import (
    BcaiError, InvalidCid, InvalidDpMessage, InvalidJobDocument, JobFlowError, JobTimeout, RankFailed,
)
from bcai.training.data import Dataset

DP_DOMAIN = "dp-job"
KINDS = ("join", "leave", "store", "checkpoint")
MAX_DP_MESSAGE_BYTES = 64 * 1024
JOIN_EVERY_S = 1.0
POLL_S = 0.05
STARTUP_S = 120.0  # a spawned rank imports torch and bcai before it reports
HEARTBEAT_S = 1.0  # a started rank says it is alive this often (from a thread of its own)
KEEP_CHECKPOINTS = 2
DEFAULT_HOST_ENV = "BCAI_DP_HOST"


# --- messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DpMessage:
    """A signed data-parallel job message (domain `dp-job`, the chain id).

    `join` / `leave`: a worker enters / stays out of `generation`. `store`: the
    generation's leader (the lowest of `members`) opened the store at host:port; the
    members resume from checkpoint `cid` at global step `step` ("" and 0: from the start).
    `checkpoint`: the state after `step` global steps is stored under `cid`.
    """

    kind: str
    job_id: bytes
    generation: int
    worker: PublicKey
    host: str = ""
    port: int = 0
    members: tuple[bytes, ...] = ()
    cid: str = ""
    step: int = 0
    signature: bytes = b""

    @property
    def address(self) -> Address:
        return self.worker.address

    def _payload(self) -> bytes:
        return encode(["dp", self.kind, self.job_id, self.generation, self.worker.raw, self.host, self.port,
                       list(self.members), self.cid, self.step])

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, kind: str, job_id: bytes, generation: int,
               **fields: Any) -> DpMessage:
        unsigned = cls(kind, job_id, generation, key.public_key, **fields)
        _check_fields(unsigned)
        signature = key.sign(DP_DOMAIN, chain_id, unsigned._payload())
        return cls(kind, job_id, generation, key.public_key, signature=signature, **fields)

    def to_bytes(self) -> bytes:
        return encode([self._payload(), self.signature])

    @classmethod
    def from_bytes(cls, data: bytes, chain_id: str) -> DpMessage:
        """Decode, check the fields and the signature; `InvalidDpMessage` on anything wrong."""
        if len(data) > MAX_DP_MESSAGE_BYTES:
            raise InvalidDpMessage(f"data-parallel message over {MAX_DP_MESSAGE_BYTES} bytes")
        try:
            payload, signature = decode(data)
            tag, kind, job_id, generation, worker, host, port, members, cid, step = decode(payload)
            if tag != "dp" or type(signature) is not bytes or type(members) is not list:
                raise ValueError("not a data-parallel message")
            message = cls(kind, job_id, generation, PublicKey(worker), host, port, tuple(members), cid, step,
                          signature)
            _check_fields(message)
            message.worker.verify(DP_DOMAIN, chain_id, payload, signature)
        except InvalidDpMessage:
            raise
        except (BcaiError, ValueError, TypeError) as exc:
            raise InvalidDpMessage(f"bad data-parallel message: {exc}") from None
        return message


def _check_fields(m: DpMessage) -> None:
    def bad(why: str) -> InvalidDpMessage:
        return InvalidDpMessage(f"bad data-parallel {m.kind!r} message: {why}")

    if m.kind not in KINDS:
        raise InvalidDpMessage(f"unknown data-parallel message kind {m.kind!r}")
    if type(m.job_id) is not bytes or len(m.job_id) != 32:
        raise bad("job id must be 32 bytes")
    for name in ("generation", "port", "step"):
        if type(getattr(m, name)) is not int or getattr(m, name) < 0:
            raise bad(f"{name} must be an int >= 0")
    if type(m.host) is not str or type(m.cid) is not str or any(type(a) is not bytes or len(a) != 20
                                                                 for a in m.members):
        raise bad("host and cid must be text, members 20-byte addresses")
    if m.kind in ("join", "leave") and (m.host or m.port or m.members or m.cid or m.step):
        raise bad("join and leave carry only the generation")
    if m.kind == "checkpoint" and (m.host or m.port or m.members or not m.cid or m.step < 1):
        raise bad("a checkpoint carries a CID and a step >= 1 only")
    if m.kind == "store":
        if not m.host or len(m.host) > 255 or not 0 < m.port < 65536:
            raise bad(f"host {m.host!r} / port {m.port} is not an address")
        if not m.members or list(m.members) != sorted(set(m.members)) or m.members[0] != m.worker.address.raw:
            raise bad("members must be sorted, distinct, and led by the sender (the lowest address)")
        if bool(m.cid) != (m.step > 0):
            raise bad("a resume point needs both a checkpoint CID and its step")
    if m.cid:
        try:
            Cid.parse(m.cid)
        except InvalidCid as exc:
            raise bad(f"cid: {exc}") from None


class DpBoard:
    """The data-parallel messages of one job received so far, checked against its workers.

    `source` is a growing list of raw job-channel messages (the job inbox's messages that
    are neither key releases nor round updates); `refresh` reads what is new."""

    def __init__(self, chain_id: str, job_id: bytes, workers: Sequence[Address], source: list[bytes]) -> None:
        self.chain_id, self.job_id = chain_id, job_id
        self.workers = frozenset(workers)
        self.source = source
        self._read = 0
        self.joins: dict[int, set[Address]] = {}
        self.leaves: dict[int, set[Address]] = {}
        self.stores: dict[int, dict[Address, DpMessage]] = {}  # generation -> leader -> its store message
        self.checkpoints: dict[tuple[int, Address], DpMessage] = {}  # (generation, sender) -> latest
        self.rejected = 0

    def refresh(self) -> None:
        while self._read < len(self.source):
            self.offer(self.source[self._read])
            self._read += 1

    def offer(self, data: bytes) -> DpMessage | None:
        """Take one raw message; None (and `rejected` + 1) when it is not a valid one of ours."""
        try:
            m = DpMessage.from_bytes(data, self.chain_id)
            if m.job_id != self.job_id:
                raise InvalidDpMessage("message for another job")
            if m.address not in self.workers or any(Address(a) not in self.workers for a in m.members):
                raise InvalidDpMessage(f"{m.address} or a member is not a worker of this job")
        except InvalidDpMessage:
            self.rejected += 1
            return None
        if m.kind == "join":
            self.joins.setdefault(m.generation, set()).add(m.address)
        elif m.kind == "leave":
            self.leaves.setdefault(m.generation, set()).add(m.address)
        elif m.kind == "store":
            self.stores.setdefault(m.generation, {}).setdefault(m.address, m)  # first one counts
        else:
            key = (m.generation, m.address)
            if key not in self.checkpoints or self.checkpoints[key].step < m.step:
                self.checkpoints[key] = m
        return m

    def get_store(self, generation: int, me: Address) -> DpMessage | None:
        """The generation's store that includes `me` (lowest leader first, if several)."""
        for leader in sorted(self.stores.get(generation, {}), key=lambda a: a.raw):
            store = self.stores[generation][leader]
            if me.raw in store.members:
                return store
        return None

    def is_left_out(self, generation: int, me: Address) -> bool:
        return any(me.raw not in s.members for s in self.stores.get(generation, {}).values())

    def get_resume_point(self, leaders: dict[int, Address]) -> tuple[str, int]:
        """The highest-step checkpoint announced by the leader of a generation in `leaders`
        (those this worker took part in); ("", 0) when there is none."""
        best = ("", 0)
        for (generation, sender), m in sorted(self.checkpoints.items(), key=lambda kv: (kv[0][0], kv[0][1].raw)):
            if leaders.get(generation) == sender and m.step > best[1]:
                best = (m.cid, m.step)
        return best


# --- checkpoints (pure) ----------------------------------------------------------------------


def encode_checkpoint(step: int, state: bytes) -> bytes:
    return encode({"state": state, "step": step})


def decode_checkpoint(data: bytes) -> tuple[int, bytes]:
    try:
        doc = decode(data)
        if not isinstance(doc, dict) or set(doc) != {"state", "step"} or type(doc["step"]) is not int \
                or type(doc["state"]) is not bytes or doc["step"] < 1:
            raise ValueError("needs exactly {state: bytes, step: int >= 1}")
    except (BcaiError, ValueError, TypeError) as exc:
        raise InvalidDpMessage(f"bad checkpoint document: {exc}") from None
    return doc["step"], doc["state"]


# --- the rank's child process ----------------------------------------------------------------


@dataclass(frozen=True)
class RankTask:
    """What a rank's child process needs (pickled to it)."""

    rank: int
    world_size: int
    host: str
    port: int
    bml: str
    x: np.ndarray
    y: np.ndarray
    epochs: int
    start_step: int
    state: bytes | None
    checkpoint_every: int
    timeout_s: float


class _EventPipe:
    """The child's end of its one-way pipe to the parent. Events are sent by one thread, in
    order: the trainer and the heartbeat both report, and a send blocks while the parent is
    busy (uploading a checkpoint), which the trainer must not. `close` flushes them."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pending: queue_module.SimpleQueue[tuple[Any, ...] | None] = queue_module.SimpleQueue()
        self._sender = threading.Thread(target=self._send_all, daemon=True)
        self._sender.start()

    def put(self, event: tuple[Any, ...]) -> None:
        self._pending.put(event)

    def _send_all(self) -> None:
        while (event := self._pending.get()) is not None:
            try:
                self._conn.send(event)
            except OSError:  # the parent is gone: nobody to tell
                return

    def close(self) -> None:
        self._pending.put(None)
        self._sender.join()
        self._conn.close()


def receive_event(reader: Connection, timeout_s: float) -> Any:
    """The child's next event, or None when none came within `timeout_s`. Raises EOFError
    once the child is gone, also when it died halfway through sending one: its pipe has
    no other writer, so the rest of a torn message reads as the end (a queue shared with
    the parent, as before, waited for the missing bytes for ever)."""
    if not reader.poll(timeout_s):
        return None
    try:
        return reader.recv()
    except OSError as exc:  # "got end of file during message"
        raise EOFError(f"the child's pipe ended halfway through an event ({exc})") from None


def _rank_main(task: RankTask, conn: Connection) -> None:
    """The child: join the group through the store, train, report on `conn`."""
    events = _EventPipe(conn)
    try:
        import torch.distributed as dist

        from bcai.training.data_parallel import run_data_parallel_worker
        from bcai.vm.frontends.bml import from_bml
        from bcai.vm.interpreter import VM

        program = from_bml(task.bml)
        session = VM(deterministic=True).load(program)
        if task.state is not None:
            session.import_state(task.state)
        events.put(("started",))
        beating = threading.Event()
        threading.Thread(target=_beat, args=(events, beating), daemon=True).start()
        # everyone ready first (peers may take long to import and load), then the group with
        # the collective timeout: a slow start is not a lost rank
        ready = [f"ready/{r}" for r in range(task.world_size)]
        try:
            store = dist.TCPStore(task.host, task.port, task.world_size, False,
                                  timeout=timedelta(seconds=task.timeout_s))
            store.set(ready[task.rank], "1")
            store.wait(ready, timedelta(seconds=STARTUP_S + task.timeout_s))
        except RuntimeError as exc:  # DistNetworkError / DistStoreError: unreachable, or a rank never came
            raise JobTimeout(f"rank {task.rank}: rendezvous at {task.host}:{task.port} failed: {exc}") from exc
        assert program.training is not None  # from_bml always plans training

        def on_checkpoint(step: int, state: bytes, samples: int) -> None:
            events.put(("checkpoint", step, state, samples))

        result = run_data_parallel_worker(
            rank=task.rank, world_size=task.world_size, store=store, session=session,
            data=Dataset(task.x, task.y), epochs=task.epochs, batch_size=program.training.batch_size,
            seed=program.seed, timeout_s=task.timeout_s, start_step=task.start_step,
            checkpoint_every=task.checkpoint_every, on_checkpoint=on_checkpoint)
        beating.set()
        events.put(("done", result.params, str(result.model_cid), result.samples, result.epoch_losses))
    except BcaiError as exc:
        events.put(("error", exc.code, str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises RankFailed
        events.put(("error", "internal", f"{type(exc).__name__}: {exc}"))
    finally:
        events.close()


def _beat(events: _EventPipe, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        events.put(("alive",))


# --- the worker's side (parent) --------------------------------------------------------------


class Publisher(Protocol):
    async def publish(self, data: bytes) -> None: ...


class ContentStore(Protocol):
    """Where checkpoints go (the node's artifact store: `bcai.sdk.Client` fits)."""

    def upload(self, data: bytes, codec: int = ...) -> Cid: ...
    def download(self, cid: Cid | str) -> bytes: ...


@dataclass
class GenerationReport:
    generation: int
    members: list[str]
    rank: int
    resumed_from: str  # checkpoint CID ("" from the start)
    start_step: int
    outcome: str  # "completed" or why the generation ended


@dataclass
class DataParallelJobResult:
    model: bytes  # canonical tensor bytes of the final model
    model_cid: Cid
    samples_processed: int
    rounds: list[GenerationReport]  # one per generation this worker took part in
    epoch_losses: tuple[float, ...] = ()


@dataclass
class _Generation:
    index: int
    members: tuple[bytes, ...]
    rank: int
    leader: Address
    host: str
    port: int
    resume_cid: str
    resume_step: int
    server: Any = None  # the TCPStore the leader hosts (kept alive for the generation)


@dataclass
class _RankOutcome:
    done: tuple[Any, ...] | None  # ("done", params, cid, samples, losses)
    lost: str = ""  # why the generation ended early (a lost peer)
    samples_at: dict[int, int] = field(default_factory=dict)  # checkpoint step -> samples this generation


def get_silence_limit(timeout_s: float) -> float:
    """How long a started rank may go without a heartbeat: half the collective timeout (at
    least 5 heartbeats), so a frozen rank's own worker gives up (and says `leave`) before
    its peers' collectives time out, and they rejoin at once."""
    return max(timeout_s / 2, 5 * HEARTBEAT_S)


def get_advertise_host(host: str | None) -> str:
    """The host peers use to reach a store this worker opens: `host`, else $BCAI_DP_HOST,
    else 127.0.0.1 (a devnet on one machine)."""
    return host or os.environ.get(DEFAULT_HOST_ENV) or "127.0.0.1"


async def run_data_parallel_job(*, key: PrivateKey, chain_id: str, job_id: bytes, workers: Sequence[Address],
                                channel: Publisher, messages: list[bytes], store: ContentStore, bml: str,
                                data: Dataset, epochs: int, checkpoint_every: int, timeout_s: float = 120.0,
                                rejoin_s: float = 10.0, advertise_host: str | None = None,
                                on_event: Callable[[str, dict[str, Any]], None] | None = None,
                                record: Callable[[int, Cid], object] | None = None) -> DataParallelJobResult:
    """Train as one worker of a data-parallel job (see the module doc); return the final model.

    `messages` is the growing list of this job's channel messages (`JobInbox.unrouted`);
    `timeout_s` bounds every collective and the first rendezvous, `rejoin_s` the wait for
    the previous generation's members after a lost rank. `record(step, cid)`, when given,
    commits a checkpoint the leader announced (on chain: `RecordCheckpoint`, the step as
    its round); it may block, and a failure is reported, never fatal.
    """
    from bcai.training.data_parallel import check_data_parallel_program
    from bcai.vm.frontends.bml import from_bml
    from bcai.vm.interpreter import VM

    me = key.address
    if me not in workers:
        raise InvalidDpMessage(f"{me} is not a worker of job {job_id.hex()[:16]}")
    if epochs < 1 or checkpoint_every < 0 or not timeout_s > 0 or not rejoin_s > 0:
        raise InvalidJobDocument(f"bad data-parallel settings: epochs {epochs}, checkpoint_every "
                                 f"{checkpoint_every}, timeout_s {timeout_s}, rejoin_s {rejoin_s}")
    # refuse a bad program here, once (in a thread: loading runs the program's init)
    await asyncio.to_thread(lambda: check_data_parallel_program(VM(deterministic=True).load(from_bml(bml))))
    note = on_event or (lambda *_: None)
    host = get_advertise_host(advertise_host)
    board = DpBoard(chain_id, job_id, workers, messages)
    expected = sorted(workers, key=lambda a: a.raw)
    leaders: dict[int, Address] = {}
    local: dict[str, bytes] = {}  # checkpoint CID -> document (the latest few)
    reports: list[GenerationReport] = []
    samples, previous_samples_at = 0, dict[int, int]()
    for index in range(2 * len(workers) + 2):
        gen = await _rendezvous(board, channel, key, chain_id, job_id, index, expected,
                                wait_s=timeout_s if index == 0 else rejoin_s, timeout_s=timeout_s + rejoin_s,
                                host=host, leaders=leaders)
        leaders[index] = gen.leader
        samples += max((s for step, s in previous_samples_at.items() if step <= gen.resume_step), default=0)
        state = None
        if gen.resume_cid:
            document = local.get(gen.resume_cid)
            if document is None:
                document = await asyncio.to_thread(store.download, gen.resume_cid)
            step, state = decode_checkpoint(document)
            if step != gen.resume_step:
                raise InvalidDpMessage(f"checkpoint {gen.resume_cid} is at step {step}, announced {gen.resume_step}")
        members = [str(Address(a)) for a in gen.members]
        note("dp_generation", {"generation": index, "rank": gen.rank, "members": members, "leader": str(gen.leader),
                               "resume_cid": gen.resume_cid, "resume_step": gen.resume_step})
        task = RankTask(gen.rank, len(gen.members), gen.host, gen.port, bml, np.asarray(data.x), np.asarray(data.y),
                        epochs, gen.resume_step, state, checkpoint_every, timeout_s)
        try:
            outcome = await _run_rank(task, gen, board, key, chain_id, job_id, channel, store, local, note, record)
        except (RankFailed, asyncio.CancelledError):  # tell the others not to wait for us
            await _publish_quietly(channel, DpMessage.create(key, chain_id, "leave", job_id, index + 1).to_bytes())
            raise
        finally:
            gen.server = None  # the leader's store closes with the generation
        reports.append(GenerationReport(index, members, gen.rank, gen.resume_cid, gen.resume_step,
                                        "completed" if outcome.done else outcome.lost))
        if outcome.done is not None:
            _, params, model_cid, done_samples, losses = outcome.done
            if str(compute_artifact_cid(params, CODEC_DAG_CBOR)) != model_cid:
                raise RankFailed(f"rank {gen.rank}: the model bytes do not match their CID {model_cid}")
            note("dp_done", {"generation": index, "model_cid": model_cid})
            return DataParallelJobResult(params, Cid.parse(model_cid), samples + done_samples, reports, tuple(losses))
        note("dp_rank_lost", {"generation": index, "reason": outcome.lost})
        expected = sorted((Address(a) for a in gen.members), key=lambda a: a.raw)
        previous_samples_at = outcome.samples_at
    raise RankFailed(f"gave up after {2 * len(workers) + 2} generations of lost ranks")


async def _publish_quietly(channel: Publisher, data: bytes) -> None:
    try:
        await channel.publish(data)
    except BcaiError:
        pass  # the node is busy: best effort (the others stop waiting after their window)


async def _rendezvous(board: DpBoard, channel: Publisher, key: PrivateKey, chain_id: str, job_id: bytes,
                      index: int, expected: list[Address], *, wait_s: float, timeout_s: float, host: str,
                      leaders: dict[int, Address]) -> _Generation:
    """Join generation `index`: lead it (open the store, announce it) or follow its leader."""
    import torch.distributed as dist

    me = key.address
    join = DpMessage.create(key, chain_id, "join", job_id, index).to_bytes()
    start = time.monotonic()
    sent = -JOIN_EVERY_S
    while True:
        now = time.monotonic()
        if now - sent >= JOIN_EVERY_S:
            await _publish_quietly(channel, join)
            sent = now
        board.refresh()
        store = board.get_store(index, me)
        if store is not None:
            return _Generation(index, store.members, list(store.members).index(me.raw), store.address, store.host,
                               store.port, store.cid, store.step)
        if board.is_left_out(index, me):
            raise JobFlowError(f"generation {index} of the data-parallel job started without this worker")
        joined = board.joins.get(index, set()) | {me}
        gone = board.leaves.get(index, set())
        waiting = [a for a in expected if a not in joined and a not in gone]
        if min(joined, key=lambda a: a.raw) == me and (not waiting or now - start >= wait_s):
            server = dist.TCPStore(host, 0, None, True, timeout=timedelta(seconds=timeout_s), wait_for_workers=False)
            members = tuple(sorted(a.raw for a in joined))
            cid, step = board.get_resume_point(leaders)
            announce = DpMessage.create(key, chain_id, "store", job_id, index, host=host, port=server.port,
                                        members=members, cid=cid, step=step)
            while True:  # the followers wait for this one: retry while the node is busy
                try:
                    await channel.publish(announce.to_bytes())
                    break
                except BcaiError:
                    if time.monotonic() - start > timeout_s:
                        raise
                    await asyncio.sleep(JOIN_EVERY_S)
            return _Generation(index, members, 0, me, host, server.port, cid, step, server)
        if now - start > timeout_s:
            raise JobTimeout(f"generation {index}: no store announced within {timeout_s} s (joined: "
                             f"{sorted(str(a) for a in joined)})")
        await asyncio.sleep(POLL_S)


async def _run_rank(task: RankTask, gen: _Generation, board: DpBoard, key: PrivateKey, chain_id: str,
                    job_id: bytes, channel: Publisher, store: ContentStore, local: dict[str, bytes],
                    note: Callable[[str, dict[str, Any]], None],
                    record: Callable[[int, Cid], object] | None = None) -> _RankOutcome:
    """Run the rank's child process to its end; relay checkpoints (the leader uploads and
    announces them). A lost peer ends the generation: our child reports it, or another
    member has already joined (or left) the next generation, which means it saw the loss
    first (then our child is stopped at once instead of waiting out its collective
    timeout, so the survivors rejoin together). Anything else raises."""
    ctx = mp.get_context("spawn")
    events, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_rank_main, args=(task, writer), daemon=True, name=f"bcai-dp-rank{task.rank}")
    proc.start()
    writer.close()  # the child holds the only write end: its death reads as the pipe's end
    note("dp_rank_started", {"generation": gen.index, "rank": task.rank, "pid": proc.pid})
    outcome = _RankOutcome(None)
    idle_limit = STARTUP_S + task.timeout_s  # then, once it has joined: `get_silence_limit`
    last = time.monotonic()
    try:
        while True:
            try:  # its last words come first: the end shows only after them
                event = await asyncio.to_thread(receive_event, events, 0.2)
            except EOFError:  # first: our own child's death fails this worker
                await asyncio.to_thread(proc.join, 5)
                raise RankFailed(f"rank {task.rank}'s training process died (exit code {proc.exitcode}) "
                                 f"in generation {gen.index}") from None
            if event is None:
                if time.monotonic() - last > idle_limit:
                    raise RankFailed(f"rank {task.rank}'s training process reported nothing for {idle_limit:.0f} s")
                moved = _get_moved_on(board, gen, key.address)
                if moved:
                    outcome.lost = f"{moved} moved on to generation {gen.index + 1}"
                    return outcome
                continue
            last = time.monotonic()
            if event[0] == "started":
                idle_limit = get_silence_limit(task.timeout_s)
            elif event[0] == "checkpoint":
                _, step, state, rank_samples = event
                outcome.samples_at[step] = rank_samples
                await _keep_checkpoint(step, state, gen, key, chain_id, job_id, channel, store, local, note, record)
            elif event[0] == "done":
                outcome.done = event
                return outcome
            elif event[0] == "error":
                _, code, message = event
                if code == JobTimeout.code:
                    outcome.lost = message
                    return outcome
                raise RankFailed(f"rank {task.rank}: {message}")
    finally:
        if proc.is_alive():
            proc.kill()
        await asyncio.to_thread(proc.join, 10)
        events.close()


def _get_moved_on(board: DpBoard, gen: _Generation, me: Address) -> str:
    """A member of `gen` (not us) that joined or left the next generation, or ""."""
    board.refresh()
    nxt = gen.index + 1
    moved = board.joins.get(nxt, set()) | board.leaves.get(nxt, set())
    return next((str(Address(m)) for m in gen.members if m != me.raw and Address(m) in moved), "")


async def _keep_checkpoint(step: int, state: bytes, gen: _Generation, key: PrivateKey, chain_id: str,
                           job_id: bytes, channel: Publisher, store: ContentStore, local: dict[str, bytes],
                           note: Callable[[str, dict[str, Any]], None],
                           record: Callable[[int, Cid], object] | None = None) -> None:
    document = encode_checkpoint(step, state)
    cid = str(compute_artifact_cid(document, CODEC_DAG_CBOR))
    local[cid] = document
    while len(local) > KEEP_CHECKPOINTS:
        del local[next(iter(local))]
    if gen.rank != 0:
        return
    try:
        await asyncio.to_thread(store.upload, document, CODEC_DAG_CBOR)
        announce = DpMessage.create(key, chain_id, "checkpoint", job_id, gen.index, cid=cid, step=step)
        await channel.publish(announce.to_bytes())
    except BcaiError as exc:
        note("dp_checkpoint_failed", {"step": step, "error": str(exc)})
        return
    note("dp_checkpoint", {"generation": gen.index, "step": step, "cid": cid})
    if record is not None:
        try:
            await asyncio.to_thread(record, step, Cid.parse(cid))
        except BcaiError as exc:
            note("dp_checkpoint_failed", {"step": step, "error": f"not recorded on chain: {exc}"})
            return
        note("dp_checkpoint_recorded", {"worker": str(key.address), "step": step, "cid": cid})
