"""`State`: typed records over the canonical key-value state (`kvstate.py`).

Each record is a small dataclass stored as canonical CBOR under one key:

| key                          | record                                            |
|------------------------------|---------------------------------------------------|
| `acct/` + address            | `Account` (balance, nonce)                        |
| `val/` + address             | `Validator` (key, bonded stake, jail, liveness)   |
| `unbq/` + be64(height)       | unbondings that mature at that height: [owner,    |
|                              | amount] or, validator stake, [owner, amount, start]|
| `wrk/` + address             | `Worker` (stake, capabilities, reputation, slashes)|
| `evl/` + address             | `Evaluator` (stake, active)                       |
| `job/` + job id              | `Job` (escrow, workers, results, attestations)    |
| `jexp/` + be64(height)       | job ids whose deadline is that height             |
| `prop/` + proposal id        | `Proposal` (changes, votes, end height)           |
| `gtally/` + be64(height)     | proposal ids tallied at that height               |
| `chal/` + challenge id       | `Challenge` (signed metadata, status)             |
| `evid/` + be64(height) + id  | height at which the offence of that height was    |
|                              | punished (kept for the evidence window)           |
| `vset/` + be64(height)       | the validator set in force from that height (kept |
|                              | for the evidence window)                          |
| `meta/...`                   | chain id, height, params, treasury, fee pool,     |
|                              | supply (minted - burned), validator-set index,    |
|                              | evidence floor (below it evidence is refused)     |

A "full canonical dump" of the state is `State.dump()`: every (key, value) in key order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import struct

import cbor2

from bcai.crypto import Address, Cid, PublicKey
from bcai.encoding import decode, encode
from bcai.ledger.kvstate import KVState, StateProof
from bcai.ledger.params import Params
from bcai.ledger.tx import Capabilities
from bcai.ledger.types import Amount, Height, JobId


def be64(n: int) -> bytes:
    return n.to_bytes(8, "big")


_pack_h = struct.Struct(">H").pack
_pack_i = struct.Struct(">I").pack
_pack_q = struct.Struct(">Q").pack


def encode_uint(n: int) -> bytes:
    """Canonical CBOR of an unsigned integer < 2**64 (the hot path's only value type)."""
    if n < 24:
        return bytes((n,))
    if n < 0x100:
        return bytes((24, n))
    if n < 0x10000:
        return b"\x19" + _pack_h(n)
    if n < 0x100000000:
        return b"\x1a" + _pack_i(n)
    return b"\x1b" + _pack_q(n)


def _enc(value: Any) -> bytes:
    # Values are built by this module from checked fields; cbor2's canonical mode is the
    # same encoding as `bcai.encoding.encode` without re-walking the value.
    return cbor2.dumps(value, canonical=True)


K_CHAIN = b"meta/chain_id"
K_HEIGHT = b"meta/height"
K_PARAMS = b"meta/params"
K_TREASURY = b"meta/treasury"
K_FEE_POOL = b"meta/fee_pool"
K_SUPPLY = b"meta/supply"
K_VSET_INDEX = b"meta/vset_index"
K_EVIDENCE_FLOOR = b"meta/evidence_floor"


# --- records --------------------------------------------------------------------------


@dataclass(slots=True)
class Validator:
    public_key: PublicKey
    bonded: int
    jailed_until: int = 0  # 0: not jailed; else the first height at which Unjail is allowed
    jailed: bool = False
    missed: bytes = b""  # one byte (0/1) per slot of the downtime window, slot = height % window
    missed_count: int = 0

    def to_value(self) -> list[Any]:
        return [self.public_key.raw, self.bonded, self.jailed_until, self.jailed, self.missed, self.missed_count]

    @classmethod
    def from_value(cls, v: list[Any]) -> Validator:
        return cls(PublicKey(v[0]), v[1], v[2], v[3], v[4], v[5])


@dataclass(slots=True)
class Worker:
    stake: int
    capabilities: Capabilities
    reputation: int = 0
    slash_count: int = 0
    slashed_total: int = 0
    deleted: bool = False
    registered_height: int = 0

    def to_value(self) -> list[Any]:
        c = self.capabilities
        caps = [c.cpu_cores, c.memory_mb, c.gpu_count, c.gpu_memory_mb, c.bandwidth_mbps, c.node_type]
        return [self.stake, caps, self.reputation, self.slash_count, self.slashed_total, self.deleted,
                self.registered_height]

    @classmethod
    def from_value(cls, v: list[Any]) -> Worker:
        return cls(v[0], Capabilities(*v[1]), v[2], v[3], v[4], v[5], v[6])


@dataclass(slots=True)
class Evaluator:
    stake: int
    active: bool = True
    jobs_attested: int = 0

    def to_value(self) -> list[Any]:
        return [self.stake, self.active, self.jobs_attested]

    @classmethod
    def from_value(cls, v: list[Any]) -> Evaluator:
        return cls(v[0], v[1], v[2])


JOB_STATES = ("open", "assigned", "training", "evaluating", "completed", "failed", "cancelled", "expired")
TERMINAL_JOB_STATES = frozenset({"completed", "failed", "cancelled", "expired"})
JOB_MODES = ("federated", "competitive")


@dataclass(slots=True)
class Job:
    client: Address
    spec_cid: Cid
    escrow: int  # tokens still held for this job
    budget: int
    required_evaluators: int
    agreement_threshold_bps: int
    deadline_height: int
    min_workers: int
    max_workers: int
    worker_stake: int
    posted_height: int
    status: str = "open"
    workers: dict[bytes, int] = field(default_factory=dict)  # address -> locked stake
    results: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)  # address -> (model cid, samples)
    evaluators: list[bytes] = field(default_factory=list)  # assigned evaluator addresses
    attestations: dict[bytes, tuple[bytes, int, bool]] = field(default_factory=dict)  # (cid, acc, accept)
    mode: str = "federated"  # one of JOB_MODES
    # competitive jobs: model cid -> evaluator address -> (accuracy bps, accept)
    verdicts: dict[bytes, dict[bytes, tuple[int, bool]]] = field(default_factory=dict)
    checkpoint: tuple[int, bytes, bytes] | None = None  # latest (round, checkpoint cid, recording worker)

    def to_value(self) -> list[Any]:
        value = [
            self.client.raw, self.spec_cid.to_bytes(), self.escrow, self.budget, self.required_evaluators,
            self.agreement_threshold_bps, self.deadline_height, self.min_workers, self.max_workers,
            self.worker_stake, self.posted_height, self.status, dict(self.workers),
            {k: list(v) for k, v in self.results.items()}, list(self.evaluators),
            {k: list(v) for k, v in self.attestations.items()},
        ]
        # Fields added later trail the list and are left out while all hold their defaults,
        # so a job that does not use them keeps the encoding (and state root) it had before.
        if self.mode != "federated" or self.verdicts or self.checkpoint is not None:
            value += [self.mode, {m: {e: list(v) for e, v in by.items()} for m, by in self.verdicts.items()},
                      None if self.checkpoint is None else list(self.checkpoint)]
        return value

    @classmethod
    def from_value(cls, v: list[Any]) -> Job:
        job = cls(
            Address(v[0]), Cid.from_bytes(v[1]), v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
            dict(v[12]),
            {k: (r[0], r[1]) for k, r in v[13].items()}, list(v[14]),
            {k: (a[0], a[1], a[2]) for k, a in v[15].items()},
        )
        if len(v) > 16:
            job.mode = v[16]
            job.verdicts = {m: {e: (a[0], a[1]) for e, a in by.items()} for m, by in v[17].items()}
            job.checkpoint = None if v[18] is None else (v[18][0], v[18][1], v[18][2])
        return job

    def locked_stake(self) -> int:
        return sum(self.workers.values())


@dataclass(slots=True)
class Proposal:
    proposer: Address
    param_changes: dict[str, int]
    challenge_status: dict[str, str]
    submitted_height: int
    end_height: int
    votes: dict[bytes, bool] = field(default_factory=dict)
    status: str = "voting"  # voting -> passed | rejected

    def to_value(self) -> list[Any]:
        return [self.proposer.raw, dict(self.param_changes), dict(self.challenge_status),
                self.submitted_height, self.end_height, dict(self.votes), self.status]

    @classmethod
    def from_value(cls, v: list[Any]) -> Proposal:
        return cls(Address(v[0]), dict(v[1]), dict(v[2]), v[3], v[4], dict(v[5]), v[6])


CHALLENGE_STATES = ("proposed", "active", "suspended", "retired")


@dataclass(slots=True)
class Challenge:
    owner: PublicKey
    name: str
    wasm_cid: Cid
    policy: dict[str, int]
    metadata_signature: bytes
    registered_height: int
    status: str = "proposed"

    def to_value(self) -> list[Any]:
        return [self.owner.raw, self.name, self.wasm_cid.to_bytes(), dict(self.policy),
                self.metadata_signature, self.registered_height, self.status]

    @classmethod
    def from_value(cls, v: list[Any]) -> Challenge:
        return cls(PublicKey(v[0]), v[1], Cid.from_bytes(v[2]), dict(v[3]), v[4], v[5], v[6])


@dataclass(frozen=True, slots=True)
class ValidatorInfo:
    """One entry of the validator set the consensus engine uses."""

    address: Address
    public_key: PublicKey
    power: int


# --- the state ------------------------------------------------------------------------


class State:
    """The whole on-chain state. Mutated only by the `process_*` functions of this package."""

    __slots__ = ("kv", "_params_raw", "_params", "_chain_id")

    def __init__(self, kv: KVState | None = None) -> None:
        self.kv = kv if kv is not None else KVState()
        self._params_raw: bytes | None = None
        self._params = Params()
        self._chain_id: str | None = None

    # -- whole-state views ---------------------------------------------------------------

    def root(self) -> bytes:
        return self.kv.root()

    def dump(self) -> list[tuple[bytes, bytes]]:
        """Every entry in key order: the full canonical dump (equal dumps = equal states)."""
        return list(self.kv.items())

    def copy(self) -> State:
        return State(self.kv.copy())

    def compute_proof(self, key: bytes) -> StateProof:
        return self.kv.compute_proof(key)

    # -- meta ----------------------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            raw = self.kv.get(K_CHAIN)
            if raw is None:
                raise RuntimeError("state has no chain id (not initialised from a genesis)")
            self._chain_id = decode(raw)
        return self._chain_id

    @property
    def height(self) -> Height:
        raw = self.kv.get(K_HEIGHT)
        return Height(decode(raw) if raw is not None else 0)

    @property
    def params(self) -> Params:
        raw = self.kv.get(K_PARAMS)
        if raw is not self._params_raw:
            self._params = Params() if raw is None else Params(**decode(raw))
            self._params_raw = raw
        return self._params

    def set_params(self, params: Params) -> None:
        self.kv.set(K_PARAMS, encode(params.to_dict()))

    def _get_int(self, key: bytes) -> int:
        raw = self.kv.get(key)
        return 0 if raw is None else int(cbor2.loads(raw))

    def _set_int(self, key: bytes, value: int) -> None:
        self.kv.set(key, encode_uint(value))

    @property
    def treasury(self) -> Amount:
        return Amount(self._get_int(K_TREASURY))

    def set_treasury(self, value: int) -> None:
        self._set_int(K_TREASURY, value)

    @property
    def fee_pool(self) -> Amount:
        return Amount(self._get_int(K_FEE_POOL))

    def set_fee_pool(self, value: int) -> None:
        self._set_int(K_FEE_POOL, value)

    @property
    def supply(self) -> Amount:
        """Total minted minus total burned, tracked independently of the balances."""
        return Amount(self._get_int(K_SUPPLY))

    def set_supply(self, value: int) -> None:
        self._set_int(K_SUPPLY, value)

    # -- accounts (the hot path: kept as bare [balance, nonce]) -----------------------------

    def get_account(self, address: Address) -> tuple[int, int]:
        """(balance, nonce) of an account; an unknown account is (0, 0)."""
        raw = self.kv.get(b"acct/" + address.raw)
        if raw is None:
            return 0, 0
        balance, nonce = cbor2.loads(raw)
        return balance, nonce

    def get_balance(self, address: Address) -> Amount:
        return Amount(self.get_account(address)[0])

    def set_account(self, address: Address, balance: int, nonce: int) -> None:
        key = b"acct/" + address.raw
        if balance == 0 and nonce == 0:
            self.kv.delete(key)
        else:
            self.kv.set(key, b"\x82" + encode_uint(balance) + encode_uint(nonce))

    def add_balance(self, address: Address, amount: int) -> None:
        balance, nonce = self.get_account(address)
        self.set_account(address, balance + amount, nonce)

    # -- typed records ---------------------------------------------------------------------

    def _get(self, key: bytes, cls: Any) -> Any:
        raw = self.kv.get(key)
        return None if raw is None else cls.from_value(cbor2.loads(raw))

    def _put(self, key: bytes, record: Any) -> None:
        self.kv.set(key, _enc(record.to_value()))

    def get_validator(self, address: Address) -> Validator | None:
        return self._get(b"val/" + address.raw, Validator)  # type: ignore[no-any-return]

    def set_validator(self, address: Address, validator: Validator) -> None:
        if validator.bonded == 0 and not validator.jailed:
            self.kv.delete(b"val/" + address.raw)
        else:
            self._put(b"val/" + address.raw, validator)

    def get_all_validators(self) -> list[tuple[Address, Validator]]:
        return [(Address(k[4:]), self._get(k, Validator)) for k in self.kv.keys_in_table(b"val/")]

    def get_worker(self, address: Address) -> Worker | None:
        return self._get(b"wrk/" + address.raw, Worker)  # type: ignore[no-any-return]

    def set_worker(self, address: Address, worker: Worker) -> None:
        self._put(b"wrk/" + address.raw, worker)

    def get_evaluator(self, address: Address) -> Evaluator | None:
        return self._get(b"evl/" + address.raw, Evaluator)  # type: ignore[no-any-return]

    def set_evaluator(self, address: Address, evaluator: Evaluator) -> None:
        self._put(b"evl/" + address.raw, evaluator)

    def get_active_evaluators(self) -> list[tuple[Address, Evaluator]]:
        pairs = [(Address(k[4:]), self._get(k, Evaluator)) for k in self.kv.keys_in_table(b"evl/")]
        return [(a, e) for a, e in pairs if e.active]

    def get_job(self, job_id: bytes) -> Job | None:
        return self._get(b"job/" + job_id, Job)  # type: ignore[no-any-return]

    def set_job(self, job_id: bytes, job: Job) -> None:
        self._put(b"job/" + job_id, job)

    def get_all_jobs(self) -> list[tuple[JobId, Job]]:
        return [(JobId(k[4:]), self._get(k, Job)) for k in self.kv.keys_in_table(b"job/")]

    def get_proposal(self, proposal_id: bytes) -> Proposal | None:
        return self._get(b"prop/" + proposal_id, Proposal)  # type: ignore[no-any-return]

    def set_proposal(self, proposal_id: bytes, proposal: Proposal) -> None:
        self._put(b"prop/" + proposal_id, proposal)

    def get_challenge(self, challenge_id: bytes) -> Challenge | None:
        return self._get(b"chal/" + challenge_id, Challenge)  # type: ignore[no-any-return]

    def set_challenge(self, challenge_id: bytes, challenge: Challenge) -> None:
        self._put(b"chal/" + challenge_id, challenge)

    # -- height-keyed queues ---------------------------------------------------------------

    def get_queue(self, table: bytes, height: int) -> list[Any]:
        raw = self.kv.get(table + be64(height))
        return [] if raw is None else cbor2.loads(raw)

    def push_queue(self, table: bytes, height: int, item: Any) -> None:
        items = self.get_queue(table, height)
        items.append(item)
        self.kv.set(table + be64(height), _enc(items))

    def remove_from_queue(self, table: bytes, height: int, item: Any) -> None:
        items = [x for x in self.get_queue(table, height) if x != item]
        if items:
            self.kv.set(table + be64(height), _enc(items))
        else:
            self.kv.delete(table + be64(height))

    def pop_queue(self, table: bytes, height: int) -> list[Any]:
        items = self.get_queue(table, height)
        self.kv.delete(table + be64(height))
        return items

