"""`Node`: the node process. One asyncio loop runs the consensus engine, the p2p host, the
mempool and the REST API.

Wiring (see docs/node.md for the why):

- the engine is a pure core; one task (`_drive`) feeds it events one at a time and carries
  out its actions in order: `PersistWal` is appended and fsynced before the call returns,
  so no later `Broadcast` can leave before our signature is on disk; timeouts are
  `loop.call_later`; `CommitBlock` clears the WAL (the block is already in the store:
  `NodeApplication.apply_block` wrote it in one SQLite transaction);
- consensus messages travel on `TOPIC_CONSENSUS`, transactions on `TOPIC_TXS` in batches
  (one gossip message per flush, at most 10 flushes/s, so a busy node stays under the
  peers' message-rate limit); a received tx batch is queued and checked by its own task in slices of a few
  ms, so neither the peer's connection nor the engine waits behind it; committed blocks through block sync (`sync/blocks`): every second a node asks
  its peers for their height and pulls what it misses; a validator's `SendBlocks` action
  sends the lagging peer a hint so it pulls at once;
- the proposer's nonce search runs in slices of `NONCE_SLICE` tries (the engine's `SOLVE`
  timeouts of 0 ms), so gossip, consensus messages and the API are served while it runs;
- non-validators (worker, evaluator, client roles) run the engine without a key: they
  follow the chain, never vote.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
import socket
import time
from collections import Counter, deque
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from bcai.consensus import (
    Action, Broadcast, CommitBlock, Engine, EvidenceFound, MessageRejected, PersistWal, Received, ScheduleTimeout,
    SendBlocks, Start, SyncBlock, TimeoutFired, decode_message, encode_message,
)
from bcai.crypto import Address
from bcai.crypto.keystore import KeyStore
from bcai.encoding import decode, encode
from bcai.errors import (
    BcaiError, BlockNotFound, ConfigError, InvalidBlock, InvalidGossip, NodeStartFailed, StoreError,
)
from bcai.ledger import SignedTx, compute_genesis_state
from bcai.node.application import NodeApplication, decode_synced_block
from bcai.node.chainspec import ChainSpec, load_chain_spec
from bcai.node.config import NodeConfig, load_config
from bcai.node.job_relay import JobRelay
from bcai.node.lock import HomeLock
from bcai.node.mempool import Mempool
from bcai.node.service import NodeReads
from bcai.node.telemetry import NodeMetrics
from bcai.node.wal import ConsensusWal
from bcai.p2p import TOPIC_CONSENSUS, TOPIC_TXS, BlockSyncServer, GossipMessage, Host, HostConfig, NodeId
from bcai.p2p import ContentExchange, TcpTransport, parse_peer_address, sync_blocks
from bcai.store import FileContentStore, SqliteChainStore

log = logging.getLogger("bcai.node")

HEIGHT_PROTOCOL = "node/height"
HINT_PROTOCOL = "node/sync-hint"
TX_FLUSH_S = 0.02  # how often the tx outbox is looked at
# at most one tx flush per interval: with flooding, each link of a full mesh carries the
# batches of 3 of the 4 validators, and 50 flushes/s each (every 20 ms) went over the
# peers' 100 msg/s limit under load: honest validators banned each other and lost txs
TX_GOSSIP_INTERVAL_S = 0.1
TX_BATCH_BYTES = 1 << 20
TX_CHECK_SLICE_S = 0.005  # tx checking between two yields to the event loop (consensus goes first)
NONCE_SLICE = 500  # PoUW nonce tries per engine call (~3 ms): the loop serves gossip and the API between
MAX_TX_INBOX = 50_000  # gossiped txs waiting for their check; more are dropped (counted)
SYNC_PERIOD_S = 1.0
MAX_EVENT_QUEUE = 10_000
MAX_SUBSCRIBER_QUEUE = 1_000


def _sync_event(block: Any, certificate: Any, now: int) -> SyncBlock:
    return SyncBlock(block, certificate, now)


def now_ms() -> int:
    return int(time.time() * 1000)


class Node(NodeReads):
    """A node built from its home directory (config.toml, genesis.json, consensus.json, keys/)."""

    def __init__(self, home: Path, config: NodeConfig | None = None) -> None:
        self.home = Path(home)
        self.config = config or load_config(self.home / "config.toml")
        self.spec: ChainSpec = load_chain_spec(self.home)
        if self.spec.chain_id != self.config.chain_id:
            raise ConfigError(f"config.toml says chain {self.config.chain_id!r}, genesis says {self.spec.chain_id!r}")
        self.key = KeyStore(self.home).load(self.config.key_name)
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.lock = HomeLock(data)  # before the store and the WAL are opened
        try:
            self._open(data)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, data: Path) -> None:
        self.store = SqliteChainStore(data / "chain.db", check=self.config.store.check_on_start)
        if self.store.get_height() == -1:
            self.store.commit_genesis(compute_genesis_state(self.spec.genesis))
        state = self.store.load_state()
        m = self.config.mempool
        self.mempool = Mempool(m.max_txs, m.max_bytes, m.max_per_sender)
        genesis = self.spec.get_consensus_genesis()
        self.app = NodeApplication(state, self.store, self.mempool, self.spec.params, genesis)
        self.is_validator = self.config.has_role("validator")
        self.wal = ConsensusWal(data / "consensus.wal")
        wal = self.wal.load() if self.is_validator else []
        self._genesis = genesis
        self.engine = Engine(self.spec.params, genesis, self.app, self.key if self.is_validator else None,
                             self.app.tip, wal, nonce_slice=NONCE_SLICE)
        self.content = FileContentStore(data / "content")
        self.metrics = NodeMetrics()
        caps = {k: v for k, v in asdict(self.config.capabilities).items() if isinstance(v, int)}
        p2p = self.config.p2p
        self.host = Host(self.key, TcpTransport(p2p.socket_buffer_bytes),
                         HostConfig(network_id=self.spec.chain_id, rate_per_s=float(p2p.rate_limit_per_s),
                                    rate_burst=2.0 * p2p.rate_limit_per_s, recv_bytes_per_s=p2p.recv_bytes_per_s,
                                    recv_bytes_burst=p2p.recv_bytes_burst, max_outbound=p2p.max_outbound,
                                    conn_bytes=p2p.conn_bytes),
                         roles=frozenset(self.config.roles), capabilities=caps)
        self.metrics.watch_p2p(self.host.metrics)
        self.exchange = ContentExchange(self.host, self.content)  # serves our artifacts to peers
        self.jobs = JobRelay(self.host, self.spec.chain_id, self._get_job_participants)
        self.api_url = ""
        self.artifact_asks = {}
        self.last_commit_time_ms: int | None = None
        # (event maker, the peer it came from, a future told what the engine made of it: the
        # error it was rejected with, or None)
        self._events: asyncio.Queue[tuple[Callable[[int], Any], NodeId | None, asyncio.Future[BcaiError | None] | None]] = (
            asyncio.Queue(MAX_EVENT_QUEUE))
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._tx_outbox: list[bytes] = []
        self._tx_outbox_bytes = 0
        self._tx_inbox: deque[tuple[list[bytes], GossipMessage]] = deque()  # gossiped batches, checked by `_check_inbox`
        self._tx_inbox_count = 0
        self._tx_inbox_ready = asyncio.Event()
        self._sync_wakeup = asyncio.Event()
        self._sync_peer: NodeId | None = None
        self._last_polled_height: int = -1
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()
        self.fatal: BaseException | None = None  # why the node stopped itself (see `_task_done`)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on p2p, subscribe, start the engine and the background tasks (not the API)."""
        p2p = self.config.p2p
        try:
            await self.host.start(f"{p2p.host}:{p2p.port}")
        except OSError as exc:
            raise NodeStartFailed(f"cannot listen for p2p on {p2p.host}:{p2p.port}: {exc.strerror or exc} "
                                  f"(another process has it? change p2p.port in config.toml)") from None
        await self.host.subscribe(TOPIC_CONSENSUS, self._on_consensus_gossip)
        await self.host.subscribe(TOPIC_TXS, self._on_tx_gossip)
        BlockSyncServer(self._get_block_bytes).register(self.host)
        self.host.register_handler(HEIGHT_PROTOCOL, self._serve_height)
        self.host.register_handler(HINT_PROTOCOL, self._serve_hint)
        self.metrics.height.set(self.app.state.height)
        self._enqueue(lambda now: Start(now))
        for coroutine in (self._drive(), self._flush_txs(), self._check_inbox(), self._sync_loop(),
                          self._connect_loop()):
            self._spawn(coroutine, essential=True)
        log.info("node started", extra={"height": self.app.state.height, "p2p": self.host.address,
                                        "roles": list(self.config.roles), "node_id": str(self.host.node_id)})
        self.started.set()

    async def stop(self) -> None:
        self._stopping.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.host.stop()
        self.close()
        log.info("node stopped", extra={"height": self.app.state.height})

    def close(self) -> None:
        """Close the WAL and the store and release the home (all that a node never started holds)."""
        self.wal.close()
        self.store.close()
        if self._uploads is not None:
            self._uploads.close()
            self._uploads = None
        self.lock.release()

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT: p2p, consensus and the API server in this loop."""
        import uvicorn

        from bcai.api import create_app
        from bcai.api.server import create_server_config

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        api = self.config.api
        try:  # bound here, before anything starts, so a taken port is a clear error (uvicorn would sys.exit)
            listener = socket.create_server((api.host, api.port), family=socket.AF_INET6 if ":" in api.host
                                            else socket.AF_INET)
        except OSError as exc:
            raise NodeStartFailed(f"cannot listen for the API on {api.host}:{api.port}: {exc.strerror or exc} "
                                  f"(another process has it? change api.port in config.toml)") from None
        try:
            await self.start()
        except BaseException:
            listener.close()
            raise
        server = uvicorn.Server(create_server_config(create_app(self, api), api))  # serves `listener`
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]  # ours, above
        host = f"[{api.host}]" if ":" in api.host else api.host
        self.api_url = f"http://{host}:{listener.getsockname()[1]}"
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        stop.cancel()
        await self.stop()

    def _spawn(self, coroutine: Any, essential: bool = False) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._essential_done if essential else self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def _essential_done(self, task: asyncio.Task[None]) -> None:
        """A loop the node cannot work without ended (the engine's, say, on a store or WAL
        write that failed): stop the whole node rather than serve on as a zombie whose
        memory is ahead of its disk. A restart resumes from what the store and WAL hold."""
        self._task_done(task)
        if task.cancelled() or self._stopping.is_set():
            return
        error = task.exception()
        self.fatal = error or RuntimeError(f"the node's task {task.get_coro()!r} ended")
        log.critical("stopping the node: an essential task failed",
                     extra={"error": f"{type(self.fatal).__name__}: {self.fatal}"})
        self._stopping.set()

    # --- the engine -----------------------------------------------------------------

    def _enqueue(self, make_event: Callable[[int], Any], source: NodeId | None = None,
                 outcome: asyncio.Future[BcaiError | None] | None = None) -> None:
        self._events.put_nowait((make_event, source, outcome))

    async def _drive(self) -> None:
        while True:
            await asyncio.sleep(0)  # Queue.get does not yield when items wait: let the loop run
            await self._handle_event(*await self._events.get())
            for _ in range(self._events.qsize()):  # what queued meanwhile, before the loop turns again
                await self._handle_event(*self._events.get_nowait())

    async def _handle_event(self, make_event: Callable[[int], Any], source: NodeId | None,
                            outcome: asyncio.Future[BcaiError | None] | None = None) -> None:
        try:
            actions = self.engine.handle(make_event(now_ms()))
        except BcaiError as exc:
            if outcome is not None:
                outcome.set_result(exc)
            if isinstance(exc, StoreError) and not isinstance(exc, BlockNotFound):
                raise  # e.g. a block applied in memory but not stored: fatal (`_essential_done`)
            log.warning("engine refused an event", extra={"code": exc.code, "error": str(exc)})
            return
        try:
            await self._execute(actions, source)
        finally:
            if outcome is not None and not outcome.done():
                outcome.set_result(next((a.error for a in actions if isinstance(a, MessageRejected)), None))

    async def _execute(self, actions: list[Action], source: NodeId | None) -> None:
        for action in actions:
            if isinstance(action, PersistWal):
                self.wal.append(action.entry)  # fsynced before any later action
            elif isinstance(action, Broadcast):
                await self.host.publish(TOPIC_CONSENSUS, encode_message(action.message))
            elif isinstance(action, ScheduleTimeout):
                asyncio.get_running_loop().call_later(
                    action.delay_ms / 1000, self._enqueue,
                    lambda now, a=action: TimeoutFired(a.height, a.round, a.step, now))  # bind this action
            elif isinstance(action, CommitBlock):
                self._on_commit(action)
            elif isinstance(action, EvidenceFound):
                self.metrics.evidence.inc()
                log.warning("equivocation evidence", extra={"validator": action.evidence.validator.hex(),
                                                            "height": action.evidence.height})
            elif isinstance(action, SendBlocks):
                self._spawn(self._send_hint(action.to, action.from_height))
            elif isinstance(action, MessageRejected):
                self.metrics.rejected.inc()
                if source is not None and action.error.peer_fault:
                    self.host.penalize(source, 1.0, action.error.code)

    def _on_commit(self, action: CommitBlock) -> None:
        self.wal.clear()  # the block is in the store: nothing signed below the next height matters
        block = action.block
        self.last_commit_time_ms = now_ms()
        self.metrics.process_commit(block.height, len(block.txs))
        self.metrics.mempool_txs.set(len(self.mempool))
        self.metrics.mempool_bytes.set(self.mempool.size_bytes)
        log.info("committed", extra={"height": block.height, "txs": len(block.txs),
                                     "block": block.block_id.hex(), "round": action.certificate.round})
        self.publish_event({"type": "block", "height": block.height, "hash": block.block_id.hex(),
                            "time_ms": block.header.time_ms, "num_txs": len(block.txs)})
        if block.height == self.app.state.height:
            txs = self.app.last_txs
        else:  # several blocks applied in one engine call (catch-up): decode from the block itself
            txs = [self.app.decode_tx(raw) for raw in block.txs]
        for index, tx in enumerate(txs):
            self.publish_event({"type": "tx", "hash": tx.hash.hex(), "height": block.height, "index": index,
                                "kind": tx.kind, "sender": str(tx.sender_address)})
            if tx.kind in JOB_KINDS:
                job = getattr(tx.body, "job_id", None)
                self.publish_event({"type": "job", "kind": tx.kind, "height": block.height, "tx": tx.hash.hex(),
                                    "job_id": job.hex() if isinstance(job, bytes) else None})

    # --- gossip ---------------------------------------------------------------------

    async def _on_consensus_gossip(self, message: GossipMessage) -> None:
        parsed = decode_message(message.data)  # InvalidMessage (a peer fault) rejects it
        if parsed.height > self.engine.height + 1:
            self._sync_wakeup.set()
        self._enqueue(lambda now: Received(parsed, now), message.source)

    def _get_job_participants(self, job_id: bytes) -> set[Address] | None:
        job = self.app.state.get_job(job_id)
        if job is None:
            return None
        members = [*job.workers, *job.evaluators]
        return {job.client, *(Address(raw) for raw in members)}

    async def _on_tx_gossip(self, message: GossipMessage) -> bool:
        """Queue a gossiped tx batch; it is relayed (`Host.forward`) only after `_check_inbox`
        admitted at least one of its txs: nothing unchecked is passed on, so a flood sent to
        us is not amplified to our neighbours (who would rate-limit and ban us for it)."""
        try:
            batch = decode(message.data)
        except BcaiError:
            raise InvalidGossip("a tx batch does not decode") from None
        if not isinstance(batch, list) or not all(isinstance(tx, bytes) for tx in batch):
            raise InvalidGossip("a tx batch is a list of byte strings")
        if self._tx_inbox_count + len(batch) > MAX_TX_INBOX:  # we are behind: gossip may drop txs
            self.metrics.txs_received.labels("p2p", "inbox_full").inc(len(batch))
            return False
        # checked by `_check_inbox`, not here: this peer's connection must not wait for it
        # (its consensus messages would queue behind the batch)
        self._tx_inbox.append((batch, message))
        self._tx_inbox_count += len(batch)
        self._tx_inbox_ready.set()
        return False

    async def _check_inbox(self) -> None:
        while True:
            await self._tx_inbox_ready.wait()
            self._tx_inbox_ready.clear()
            while self._tx_inbox:
                batch, message = self._tx_inbox.popleft()
                self._tx_inbox_count -= len(batch)
                # already known, already committed or outdated: normal in gossip, only counted
                results = await self._check_txs(batch, "p2p")
                if any(isinstance(result, SignedTx) for result in results):
                    await self.host.forward(message)

    async def _check_txs(self, raws: list[bytes], source: str) -> list[SignedTx | BcaiError]:
        """`check_tx` for each tx in order (the tx, or the error that refused it), yielding to
        the event loop every `TX_CHECK_SLICE_S` seconds so a big batch does not hold up
        consensus messages; the metrics are counted once per outcome, not per tx."""
        results: list[SignedTx | BcaiError] = []
        outcomes: Counter[str] = Counter()
        slice_end = time.perf_counter() + TX_CHECK_SLICE_S
        for raw in raws:
            if time.perf_counter() > slice_end:
                await asyncio.sleep(0)
                slice_end = time.perf_counter() + TX_CHECK_SLICE_S
            try:
                results.append(self.app.check_tx(raw))
                outcomes["ok"] += 1
            except BcaiError as exc:
                results.append(exc)
                outcomes[exc.code] += 1
        for code, count in outcomes.items():
            self.metrics.txs_received.labels(source, code).inc(count)
        self.metrics.mempool_txs.set(len(self.mempool))
        return results

    async def submit_tx(self, raw: bytes) -> bytes:
        """Check `raw`, admit it to the mempool and gossip it; return its hash (or raise)."""
        [result] = await self.submit_txs([raw])
        if isinstance(result, BcaiError):
            raise result
        return result

    async def submit_txs(self, raws: list[bytes]) -> list[bytes | BcaiError]:
        """`submit_tx` for each tx in order: its hash, or the error that refused it."""
        results: list[bytes | BcaiError] = []
        for result in await self._check_txs(raws, "api"):
            if isinstance(result, BcaiError):
                results.append(result)
                continue
            self._tx_outbox.append(result.raw)
            self._tx_outbox_bytes += len(result.raw)
            results.append(result.hash)
        return results

    async def _flush_txs(self) -> None:
        last = 0.0
        while True:
            await asyncio.sleep(TX_FLUSH_S)
            if not self._tx_outbox or time.monotonic() - last < TX_GOSSIP_INTERVAL_S:
                continue
            last = time.monotonic()
            while self._tx_outbox:
                outbox = self._tx_outbox
                end, size = 0, 0
                while end < len(outbox) and size + len(outbox[end]) <= TX_BATCH_BYTES:
                    size += len(outbox[end])
                    end += 1
                end = max(end, 1)  # a tx larger than a batch is sent alone
                batch = outbox[:end]
                del outbox[:end]
                self._tx_outbox_bytes -= sum(len(raw) for raw in batch)
                await self.host.publish(TOPIC_TXS, encode(batch))

    # --- block sync -----------------------------------------------------------------

    def _get_block_bytes(self, height: int) -> bytes | None:
        if not 1 <= height <= self.store.get_height():
            return None
        return self.store.get_block(height).data

    async def _serve_height(self, peer: NodeId, payload: bytes) -> bytes:
        return encode(self.app.state.height)

    async def _serve_hint(self, peer: NodeId, payload: bytes) -> bytes:
        self._sync_peer = peer
        self._sync_wakeup.set()
        return b""

    async def _send_hint(self, validator: bytes, from_height: int) -> None:
        for peer in self.host.peers:
            record = self.host.get_peer_record(peer)
            if record is not None and record.record.public_key.address.raw == validator:
                try:
                    await self.host.request(peer, HINT_PROTOCOL, encode(from_height), timeout=5)
                except BcaiError as exc:
                    log.debug("sync hint not delivered", extra={"code": exc.code})
                return

    async def _sync_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._sync_wakeup.wait(), SYNC_PERIOD_S)
            except asyncio.TimeoutError:
                pass
            self._sync_wakeup.clear()
            try:
                await self._sync_once()
            except BcaiError as exc:
                log.info("block sync attempt failed", extra={"code": exc.code, "error": str(exc)})

    async def _sync_once(self) -> None:
        peers = self.host.peers
        if not peers:
            return
        hinted, self._sync_peer = self._sync_peer, None
        candidates = [hinted] if hinted in peers else random.sample(peers, min(3, len(peers)))
        ahead: list[tuple[int, NodeId]] = []
        for peer in candidates:
            try:
                height = decode(await self.host.request(peer, HEIGHT_PROTOCOL, b"", timeout=3))
            except BcaiError:
                continue
            if type(height) is int and height > self.app.state.height:
                ahead.append((height, peer))
        # one block behind is normal while a commit propagates: act on 2+, on a hint, or when
        # we have not moved since the last poll (stuck one behind: our peers moved on)
        mine, previous = int(self.app.state.height), self._last_polled_height
        self._last_polled_height = mine
        best = max((height for height, _ in ahead), default=mine)
        if not ahead or (best - mine < 2 and hinted is None and mine != previous):
            return
        # the highest first; a peer whose blocks fail verification is banned and the same
        # heights are asked of the next (`sync_blocks`)
        order = [peer for _, peer in sorted(ahead, key=lambda item: -item[0])]
        reached = await sync_blocks(self.host, order, mine + 1, best, self._apply_synced, timeout=20)
        if reached > mine + 1:
            log.info("synced blocks", extra={"height": self.app.state.height, "peers": [str(p) for p in order]})

    async def _apply_synced(self, peer: NodeId, height: int, raw: bytes) -> bool:
        """Hand one synced block to the engine and wait for its verdict: True once our chain
        holds `height`; raises (a peer fault) if the block does not decode, is not at the
        height asked for, or the engine rejects it (bad certificate, wrong parent, ...)."""
        block, certificate = decode_synced_block(raw)
        if block.height != height:
            raise InvalidBlock(f"asked for block {height}, got {block.height}")
        if height <= self.app.state.height:
            return True  # consensus got there first
        outcome: asyncio.Future[BcaiError | None] = asyncio.get_running_loop().create_future()
        self._enqueue(functools.partial(_sync_event, block, certificate), peer, outcome)
        rejected = await outcome
        if rejected is not None:
            raise rejected
        return self.app.state.height >= height

    async def _connect_loop(self) -> None:
        targets = [parse_peer_address(text) for text in self.config.p2p.bootstrap]
        while True:
            for node_id, address in targets:
                if node_id in self.host.peers or node_id == self.host.node_id:
                    continue
                try:
                    await self.host.connect(address, node_id)
                    log.info("connected", extra={"peer": str(node_id), "address": address})
                except (BcaiError, OSError) as exc:
                    log.debug("connect failed", extra={"peer": str(node_id), "error": str(exc)})
            self.metrics.peers.set(len(self.host.peers))
            await asyncio.sleep(1.0)

    # --- events for the API's websocket -----------------------------------------------

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def publish_event(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():  # a reader too slow to keep up loses its oldest events, not our memory
                queue.get_nowait()
            queue.put_nowait(event)


JOB_KINDS = frozenset({"post_job", "volunteer", "submit_result", "attest", "cancel_job", "record_checkpoint"})
