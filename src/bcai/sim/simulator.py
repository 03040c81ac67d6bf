"""The deterministic network simulator: many engines, one virtual clock, one seed.

Everything random (latency, loss, duplication, reordering, transaction load, garbage
bytes) comes from one `random.Random(seed)`, and events with equal times run in the order
they were scheduled, so a run is exactly reproducible from its `SimConfig`.

Node i runs validator i's key. Byzantine roles go to the highest indices; a
`duplicate-key` validator gets a clone node (same key, its own WAL) placed in the other
half of a network split that lasts the whole run. Crashed nodes keep their block store,
application state and WAL (what a real node has on disk) and lose everything else;
on restart the engine replays its WAL.

Signature checks stay real; one cache shared by all nodes means each signed message is
verified once, not once per receiver (`SimConfig.share_verification`).

The proposer's nonce search takes virtual time: a node that proposes a new block is busy
for (nonce + 1) / `hash_rate` ms (the engine searches nonces from 0) before what it does
next leaves. Without it the difficulty rule sees blocks that never get slower as the work
gets harder, and raises the difficulty 5% a block for ever (and the real CPU a long run
spends on nonces with it); with it, the difficulty settles where work plus consensus take
the target block time, as on a real network.
"""

from __future__ import annotations

import gc
import heapq
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bcai.consensus.blocks import ChainTip
from bcai.consensus.config import ConsensusParams, Genesis
from bcai.consensus.engine import Engine
from bcai.consensus.events import (
    Action,
    Broadcast,
    CommitBlock,
    EvidenceFound,
    MessageRejected,
    PersistWal,
    Received,
    ScheduleTimeout,
    SendBlocks,
    Start,
    SyncBlock,
    TimeoutFired,
)
from bcai.consensus.messages import Block, CommitCertificate, Proposal, Vote, WalEntry
from bcai.consensus.ledger_app import LedgerApplication, SharedExecution
from bcai.crypto import PrivateKey, sha256
from bcai.errors import BcaiError, SimulationError
from bcai.ledger import Genesis as LedgerGenesis
from bcai.ledger import Amount, Params, Transfer, check_invariants, compute_genesis_state, compute_params_with, encode_tx
from bcai.sim.byzantine import Behaviour, get_behaviour
from bcai.sim.checkers import Checkers
from bcai.sim.network import LinkModel, PartitionSchedule, PartitionWindow

_DELIVER, _TIMER, _SYNC, _TX, _CRASH, _RESTART, _LOAD = range(7)
USERS = 8
USER_BALANCE = 1_000_000


@dataclass
class SimConfig:
    validators: int = 4
    stake_dist: str = "equal"  # or "zipf"
    byzantine: list[tuple[int, str]] = field(default_factory=list)  # (count, behaviour)
    partitions: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # "I@T" or "I@T+D" (seconds)
    wal_crash: tuple[int, int, float] | None = None  # (node, WAL position, restart after s)
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    latency_ms: float = 20.0
    jitter_ms: float = 10.0
    heights: int = 10
    seed: int = 0
    matrix_n: int = 32
    tx_interval_ms: int = 300
    liveness_bound_s: float = 60.0
    max_virtual_s: float | None = None
    share_verification: bool = True
    hash_rate: float = 1.0  # nonce tries per virtual ms (0: the search takes no virtual time)

    def make_params(self) -> ConsensusParams:
        return ConsensusParams(
            chain_id="bcai-sim", matrix_n=self.matrix_n, freivalds_k=2, genesis_target=2**63,
            target_block_ms=200, max_clock_drift_ms=2_000, timeout_commit_ms=30,
        )


@dataclass
class SimReport:
    heights_committed: int
    heights_committed_min: int
    forks: int
    agreement_ok: bool
    validity_ok: bool
    liveness_ok: bool
    accountability_ok: bool
    supply_ok: bool
    culprits: list[int]
    evidence_committed: int
    rounds_max: int
    virtual_seconds: float
    wall_seconds: float
    messages_delivered: int
    messages_rejected: int
    validators: int
    seed: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.agreement_ok and self.validity_ok and self.liveness_ok and self.accountability_ok and self.supply_ok

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ok"] = self.ok
        return d


class SimNode:
    def __init__(self, index: int, validator: int, key: PrivateKey, app: LedgerApplication, behaviour: Behaviour) -> None:
        self.index = index
        self.validator = validator  # index of the validator whose key this node runs
        self.key = key
        self.app = app
        self.behaviour = behaviour
        self.wal: list[WalEntry] = []
        self.store: dict[int, tuple[Block, CommitCertificate]] = {}
        self.tip: ChainTip | None = None
        self.alive = True
        self.incarnation = 0
        self.engine: Engine | None = None


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        if config.validators < 1:
            raise SimulationError("need at least one validator")
        if config.hash_rate < 0:
            raise SimulationError(f"hash rate must not be negative, got {config.hash_rate}")
        if config.stake_dist not in ("equal", "zipf"):
            raise SimulationError(f"unknown stake distribution {config.stake_dist!r} (equal, zipf)")
        self.config = config
        self.params = config.make_params()
        self.rng = random.Random(config.seed)
        self.now = 0
        self._seq = 0
        self._queue: list[tuple[int, int, int, Any]] = []
        self.link = LinkModel(config.latency_ms, config.jitter_ms, config.loss, config.duplicate, config.reorder)
        self.verified: dict[int, Any] | None = {} if config.share_verification else None
        self.delivered = 0
        self.rejected = 0
        self._last_fault_end = 0
        self._done = False
        self._grace_end: int | None = None  # once an honest node reaches the goal, laggards get 10 s more
        n = config.validators
        self.keys = [PrivateKey.from_label(f"sim-validator-{i}") for i in range(n)]
        powers = [100] * n if config.stake_dist == "equal" else [max(1, 1000 // (i + 1)) for i in range(n)]
        self.users = [PrivateKey.from_label(f"sim-user-{i}") for i in range(USERS)]
        self.ledger_genesis = LedgerGenesis(
            self.params.chain_id,
            compute_params_with(Params(), {"max_validators": max(100, n)}),
            tuple((u.address, USER_BALANCE) for u in self.users),
            tuple((k.public_key, p) for k, p in zip(self.keys, powers)),
        )
        self._supply_checked: set[bytes] = set()
        # nodes in the same state applying the same block share one ledger execution
        # (deterministic ledger, states never mutated once adopted), like signatures
        self.execution: SharedExecution | None = SharedExecution() if config.share_verification else None
        self._genesis_state: Any = None
        self._user_pending: dict[int, tuple[int, int]] = {}  # user -> (nonce sent, when)
        self._solved: set[tuple[int, bytes]] = set()  # (node, block id) whose search took virtual time
        self.genesis = Genesis(time_ms=0, genesis_hash=sha256(b"bcai-sim-genesis" + str(config.seed).encode()))
        self.checkers = Checkers(self.params, int(config.liveness_bound_s * 1000))
        self.nodes: list[SimNode] = []
        self._assign_roles(n)
        self.partitions = PartitionSchedule()
        for spec in config.partitions:
            self.partitions.add_spec(spec, len(self.nodes))
        self._add_duplicate_key_split()
        self._last_fault_end = max(self._last_fault_end, self.partitions.get_last_heal_ms())
        self._by_address: dict[bytes, list[int]] = {}
        for node in self.nodes:
            self._by_address.setdefault(node.key.address.raw, []).append(node.index)
        for spec in config.crashes:
            self._add_crash(spec)

    # --- setup -----------------------------------------------------------------------

    def _make_app(self) -> LedgerApplication:
        if self._genesis_state is None:
            self._genesis_state = compute_genesis_state(self.ledger_genesis)
            self._genesis_state.root()
        return LedgerApplication(self._genesis_state, shared=self.execution)

    def _assign_roles(self, n: int) -> None:
        roles = ["honest"] * n
        slot = n - 1
        for count, kind in self.config.byzantine:
            get_behaviour(kind)  # validates the name
            if count < 0 or slot - count + 1 < 0:
                raise SimulationError(f"{count} byzantine validators do not fit among {n}")
            for _ in range(count):
                roles[slot] = kind
                slot -= 1
        for i, key in enumerate(self.keys):
            self.nodes.append(SimNode(i, i, key, self._make_app(), get_behaviour(roles[i])))
        for i, role in enumerate(roles):
            if role == "duplicate-key":
                self.nodes.append(SimNode(len(self.nodes), i, self.keys[i], self._make_app(), get_behaviour("honest")))

    def _add_duplicate_key_split(self) -> None:
        """Originals and half the honest nodes on one side, clones and the rest on the other."""
        n = self.config.validators
        if len(self.nodes) == n:
            return
        honest = [node.index for node in self.nodes[:n] if node.behaviour.name != "duplicate-key"]
        group = [0] * len(self.nodes)
        for i in honest[(len(honest) + 1) // 2 :]:
            group[i] = 1
        for node in self.nodes[n:]:
            group[node.index] = 1
        self.partitions.windows.append(PartitionWindow(0, 2**62, "groups", group_of=tuple(group)))

    def _add_crash(self, spec: str) -> None:
        try:
            who, _, when = spec.partition("@")
            at, _, down = when.partition("+")
            index, at_ms, down_ms = int(who), int(float(at) * 1000), int(float(down or "2") * 1000)
        except ValueError:
            raise SimulationError(f"bad crash spec {spec!r} (e.g. 2@5+3: node 2 at 5 s, back 3 s later)") from None
        if not 0 <= index < len(self.nodes) or at_ms < 0 or down_ms <= 0:
            raise SimulationError(f"crash spec {spec!r} is out of range")
        self._push(at_ms, _CRASH, (index, down_ms))
        self._last_fault_end = max(self._last_fault_end, at_ms + down_ms)

    # --- event queue -----------------------------------------------------------------

    def _push(self, at_ms: int, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_ms, self._seq, kind, payload))

    def _send(self, src: int, dst: int, kind: int, payload: Any, busy_ms: int = 0) -> None:
        if self.partitions.windows and self.partitions.is_blocked(src, dst, len(self.nodes), self.now):
            return
        for delay in self.link.get_delays(self.rng):
            self._seq += 1
            heapq.heappush(self._queue, (self.now + busy_ms + delay, self._seq, kind, (dst, payload)))

    def _get_work_ms(self, node: SimNode, message: Any) -> int:
        """Virtual time of the nonce search behind a new block this node proposes (0 for
        anything else, and for a proposal sent again)."""
        if not isinstance(message, Proposal) or self.config.hash_rate <= 0 or message.pol_round != -1:
            return 0
        if message.proposer != node.key.address.raw or (node.index, message.block.block_id) in self._solved:
            return 0
        self._solved.add((node.index, message.block.block_id))
        return int((message.block.header.nonce + 1) / self.config.hash_rate)

    # --- running ---------------------------------------------------------------------

    def run(self) -> SimReport:
        # the cyclic GC would walk millions of live messages again and again; a run makes
        # no garbage cycles worth collecting, so it is paused for the run and restored after
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if was_enabled:
                gc.enable()

    def _run(self) -> SimReport:
        started = time.perf_counter()
        for node in self.nodes:
            self._start_engine(node)
        if self.config.tx_interval_ms > 0:
            self._push(self.config.tx_interval_ms, _LOAD, None)
        limit = self.config.max_virtual_s
        max_ms = int(limit * 1000) if limit is not None else self._last_fault_end + self.config.heights * 20_000 + 60_000
        while self._queue and not self._done:
            at, _, kind, payload = heapq.heappop(self._queue)
            if at > max_ms or (self._grace_end is not None and at > self._grace_end):
                self.now = min(max_ms, self._grace_end if self._grace_end is not None else max_ms)
                break
            self.now = at
            self._dispatch(kind, payload)
        return self._report(time.perf_counter() - started)

    def _finished(self) -> bool:
        return all(n.tip is not None and n.tip.height >= self.config.heights for n in self._honest_nodes() if n.alive) and all(
            n.alive for n in self._honest_nodes()
        )

    def _honest_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes if n.behaviour.name in ("honest", "duplicate-key")]

    def _dispatch(self, kind: int, payload: Any) -> None:
        if kind == _DELIVER:
            dst, message = payload
            node = self.nodes[dst]
            if node.alive:
                self.delivered += 1
                self._handle(node, Received(message, self.now))
        elif kind == _TIMER:
            index, incarnation, t = payload
            node = self.nodes[index]
            if node.alive and node.incarnation == incarnation:
                self._handle(node, TimeoutFired(t.height, t.round, t.step, self.now))
        elif kind == _SYNC:
            dst, (block, cert) = payload
            node = self.nodes[dst]
            if node.alive:
                self._handle(node, SyncBlock(block, cert, self.now))
        elif kind == _TX:
            dst, tx = payload
            if self.nodes[dst].alive:
                self.nodes[dst].app.add_tx(tx)
        elif kind == _LOAD:
            self._make_load()
            self._push(self.now + self.config.tx_interval_ms, _LOAD, None)
        elif kind == _CRASH:
            index, down_ms = payload
            self._crash(self.nodes[index], down_ms)
        elif kind == _RESTART:
            node = self.nodes[payload]
            node.alive = True
            self._start_engine(node)

    def _start_engine(self, node: SimNode) -> None:
        node.engine = Engine(self.params, self.genesis, node.app, node.key, node.tip, node.wal, self.verified)
        self._handle(node, Start(self.now))

    def _crash(self, node: SimNode, down_ms: int) -> None:
        if not node.alive:
            return
        node.alive = False
        node.incarnation += 1
        node.engine = None
        self._push(self.now + down_ms, _RESTART, node.index)

    def _handle(self, node: SimNode, event: Any) -> None:
        assert node.engine is not None
        actions = node.engine.handle(event)
        node.behaviour.after_handle(node.engine)
        self._execute(node, actions)
        if node.engine is not None:
            node.tip = node.engine.tip

    def _execute(self, node: SimNode, actions: list[Action]) -> None:
        if not actions:
            return
        crash = self.config.wal_crash
        engine = node.engine
        busy_ms = 0  # the node is busy searching a nonce: what follows leaves that much later
        for i, action in enumerate(actions):
            if isinstance(action, PersistWal):
                node.wal.append(action.entry)
                if crash is not None and crash[0] == node.index and len(node.wal) == crash[1] and node.incarnation == 0:
                    # crash right after the write: nothing after it leaves, but the block
                    # store moves with the application state (one transaction on disk)
                    for later in actions[i + 1 :]:
                        if isinstance(later, CommitBlock):
                            self._on_commit(node, later)
                    node.tip = engine.tip if engine is not None else node.tip
                    down_ms = int(crash[2] * 1000)
                    self._last_fault_end = max(self._last_fault_end, self.now + down_ms)
                    self._crash(node, down_ms)
                    return
            elif isinstance(action, Broadcast):
                busy_ms += self._get_work_ms(node, action.message)
                self._broadcast(node, action.message, busy_ms)
            elif isinstance(action, ScheduleTimeout):
                self._push(self.now + busy_ms + action.delay_ms, _TIMER, (node.index, node.incarnation, action))
            elif isinstance(action, CommitBlock):
                self._on_commit(node, action)
            elif isinstance(action, SendBlocks):
                self._send_blocks(node, action)
            elif isinstance(action, MessageRejected):
                self.rejected += 1
            elif isinstance(action, EvidenceFound):
                ev = action.evidence
                self.checkers.s.culprits.add(ev.validator)

    def _broadcast(self, node: SimNode, message: Any, busy_ms: int = 0) -> None:
        peers = [i for i in range(len(self.nodes)) if i != node.index]
        sends = node.behaviour.on_broadcast(node.key, self.params.chain_id, message, peers, self.rng)
        for recipients, payload in sends:
            if isinstance(payload, Vote):
                self.checkers.on_vote_sent(payload)
            for dst in recipients:
                self._send(node.index, dst, _DELIVER, payload, busy_ms)

    def _on_commit(self, node: SimNode, action: CommitBlock) -> None:
        block, cert = action.block, action.certificate
        node.store[block.height] = (block, cert)
        if block.height >= self.config.heights and node.behaviour.name in ("honest", "duplicate-key"):
            if self._grace_end is None:
                self._grace_end = self.now + 10_000
            if node.engine is not None:
                node.tip = node.engine.tip
            self._done = self._finished()
        validators = list(node.app.get_validators(block.height))
        self.checkers.on_commit(node.index, block, cert, validators, self.now, self._is_supply_conserved(node))

    def _is_supply_conserved(self, node: SimNode) -> bool:
        """The ledger's own invariant check, once per distinct state (equal roots, equal states)."""
        root = node.app.get_app_hash()
        if root in self._supply_checked:
            return True
        try:
            check_invariants(node.app.state)
        except BcaiError:
            return False
        self._supply_checked.add(root)
        return True

    def _send_blocks(self, node: SimNode, action: SendBlocks) -> None:
        if not node.behaviour.sends_blocks:
            return
        top = max(node.store, default=0)
        for dst in self._by_address.get(action.to, []):
            for height in range(action.from_height, top + 1):
                if height in node.store:
                    self._send(node.index, dst, _SYNC, node.store[height])

    def _make_load(self) -> None:
        """One signed transfer from a user with nothing in flight, gossiped from a random node."""
        reference = self.nodes[0].app.state
        for u, (nonce, since) in list(self._user_pending.items()):
            if reference.get_account(self.users[u].address)[1] > nonce or self.now - since > 30_000:
                del self._user_pending[u]
        free = [u for u in range(USERS) if u not in self._user_pending]
        if not free:
            return
        u = self.rng.choice(free)
        sender = self.users[u]
        nonce = reference.get_account(sender.address)[1]
        to = self.users[self.rng.randrange(USERS)].address
        tx = encode_tx(sender, nonce, 1, self.params.chain_id, Transfer(to=to, amount=Amount(self.rng.randint(1, 100))))
        self._user_pending[u] = (nonce, self.now)
        origin = self.rng.randrange(len(self.nodes))
        self.nodes[origin].app.add_tx(tx)
        for dst in range(len(self.nodes)):
            if dst != origin:
                self._send(origin, dst, _TX, tx)

    # --- report ----------------------------------------------------------------------

    def _report(self, wall: float) -> SimReport:
        honest = self._honest_nodes()
        heights = [n.tip.height if n.tip else 0 for n in honest]
        genesis_validators = list(self.nodes[0].app.get_validators(1))
        culprit_power, total = self.checkers.get_culprit_power(genesis_validators)
        forks = self.checkers.forks
        s = self.checkers.s
        index_of = {k.address.raw: i for i, k in enumerate(self.keys)}
        problems = s.invalid_blocks + [f"supply broken: {x}" for x in s.supply_failures]
        return SimReport(
            heights_committed=max(heights, default=0),
            heights_committed_min=min(heights, default=0),
            forks=forks,
            agreement_ok=forks == 0,
            validity_ok=not s.invalid_blocks,
            liveness_ok=self.checkers.is_live(self._last_fault_end, self._finished()),
            accountability_ok=forks == 0 or 3 * culprit_power > total,
            supply_ok=not s.supply_failures,
            culprits=sorted(index_of[a] for a in s.culprits if a in index_of),
            evidence_committed=len(s.evidence_committed),
            rounds_max=s.rounds_max,
            virtual_seconds=round(self.now / 1000, 3),
            wall_seconds=round(wall, 3),
            messages_delivered=self.delivered,
            messages_rejected=self.rejected,
            validators=self.config.validators,
            seed=self.config.seed,
            problems=problems,
        )


def run_simulation(config: SimConfig) -> SimReport:
    return Simulation(config).run()
