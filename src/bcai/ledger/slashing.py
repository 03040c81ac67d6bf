"""Slashing state effects: equivocation evidence and downtime (bad work is in `jobs.py`).

The *checks* of evidence (two conflicting signed votes) belong to the consensus engine; it
hands the ledger verified `Misbehaviour` records inside the block. The ledger applies each
at most once (`evid/` + be64(offence height) + offence id records where it was applied), and
only inside the evidence window (`get_evidence_window`: `evidence_max_age` blocks, at most
the unbonding period) against a member of the offence height's set, which the state keeps
for that long.

A record is needed only while its offence could still be admitted: at the end of every
block, records whose offence height fell out of the window the next block uses are
deleted (`process_evidence_expiry`), so the state holds the punished offences of one
window, not of the whole chain. Because `evidence_max_age` is governable, a later, longer
window must not reopen offences whose records are gone (that would punish them twice):
`meta/evidence_floor` keeps the start of the window they were pruned from, and evidence
below it is refused as too old whatever the window (`get_evidence_max_age`).

An equivocation slashes `equivocation_slash_bps` of the validator's power at the offence
height (Cosmos SDK's rule): first from the validator stake it started unbonding at or after
that height (each such entry loses the same fraction, oldest maturity first, never more than
is due in all), then the rest from its bonded stake.
Unbonding right after double-signing therefore escapes nothing, and stake bonded after the
offence is not punished for it. The validator is jailed, even with nothing left bonded.

Downtime: each validator of the set in force at height h - 1 has one slot per height in a
window of `downtime_window` (default 100) slots; a slot is 1 when the validator's signature
is missing from the commit of that height, which block h carries (`last_commit_signers`).
Missing more than `downtime_max_missed` (default 50) of the window slashes
`downtime_slash_bps` (1%) and jails. Only changed records are written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cbor2

from bcai.crypto import Address
from bcai.encoding import encode
from bcai.errors import InvalidBlock, UnknownEntity
from bcai.ledger.bank import process_protocol_income
from bcai.ledger.params import BPS, get_evidence_window
from bcai.ledger.state import K_EVIDENCE_FLOOR, State, Validator, be64
from bcai.ledger.staking import get_validator_set, get_validator_unbondings, process_unbonding_slash

MISBEHAVIOUR_KINDS = ("equivocation",)
EVIDENCE_TABLE = b"evid/"


@dataclass(frozen=True, slots=True)
class Misbehaviour:
    """Verified evidence that `address` misbehaved at `height` (checked by consensus)."""

    address: Address
    height: int
    kind: str  # "equivocation"
    evidence_hash: bytes  # hash of the evidence itself (e.g. the two conflicting votes)

    def to_value(self) -> list[object]:
        return [self.address.raw, self.height, self.kind, self.evidence_hash]

    @property
    def id(self) -> bytes:
        """Evidence of one offence (validator, height, kind) is applied once, whatever its bytes."""
        return hashlib.sha256(encode([self.address.raw, self.height, self.kind])).digest()


def compute_slash(amount: int, bps: int) -> int:
    return amount * bps // BPS


def process_slash_validator(state: State, address: Address, validator: Validator, bps: int) -> int:
    """Slash `bps` of the bonded stake and jail the validator; returns the amount slashed."""
    slashed = compute_slash(validator.bonded, bps)
    _process_jail(state, address, validator, slashed)
    process_protocol_income(state, slashed)
    return slashed


def _process_jail(state: State, address: Address, validator: Validator, slashed: int) -> None:
    validator.bonded -= slashed
    validator.jailed = True
    validator.jailed_until = state.height + state.params.jail_duration
    validator.missed = b""
    validator.missed_count = 0
    state.set_validator(address, validator)


def _evidence_key(evidence: Misbehaviour) -> bytes:
    # the offence height first, so the records that leave the window are a key prefix range
    return EVIDENCE_TABLE + be64(evidence.height) + evidence.id


def get_evidence_floor(state: State) -> int:
    """The lowest offence height evidence may still name (1 until records were pruned)."""
    raw = state.kv.get(K_EVIDENCE_FLOOR)
    return 1 if raw is None else int(cbor2.loads(raw))


def get_evidence_max_age(state: State) -> int:
    """How far below the next block's height its evidence may be: the evidence window, but
    never reaching below the floor of pruned records (a window lengthened by governance
    does not reopen offences whose records are gone)."""
    window = get_evidence_window(state.params)
    if K_EVIDENCE_FLOOR not in state.kv:  # nothing pruned yet: heights below 1 are refused anyway
        return window
    return min(window, state.height + 1 - get_evidence_floor(state))


def process_misbehaviour(state: State, evidence: Misbehaviour) -> None:
    key = _evidence_key(evidence)
    window = get_evidence_window(state.params)
    # a known kind, from a height of the chain, not in the future, inside the evidence window
    if evidence.kind not in MISBEHAVIOUR_KINDS:
        raise InvalidBlock(f"unknown misbehaviour kind {evidence.kind!r}")
    if not 0 < evidence.height <= state.height:
        raise InvalidBlock(f"evidence height {evidence.height} outside [1, {state.height}]")
    if evidence.height < state.height - window:
        raise InvalidBlock(f"evidence from height {evidence.height} is too old at height {state.height} "
                           f"(the evidence window is {window} blocks)")
    floor = get_evidence_floor(state)
    if evidence.height < floor:
        raise InvalidBlock(f"evidence from height {evidence.height} is too old: offences below height {floor} "
                           f"left the evidence window and their records were pruned")
    # by a member of that height's set (kept in state for the whole window), applied once
    try:
        members = {v.address: v for v in get_validator_set(state, evidence.height)}
    except UnknownEntity as exc:
        raise InvalidBlock(f"evidence for height {evidence.height} cannot be checked: {exc}") from None
    if evidence.address not in members:
        raise InvalidBlock(f"evidence names {evidence.address}, not a validator at height {evidence.height}")
    if key in state.kv:
        raise InvalidBlock("evidence was already applied")
    state.kv.set(key, cbor2.dumps(state.height))
    process_equivocation_slash(state, evidence.address, evidence.height, members[evidence.address].power)


def process_equivocation_slash(state: State, address: Address, height: int, power: int) -> int:
    """Slash an equivocation at `height` by a validator that had `power` then (see the module
    docstring); returns the amount slashed, all of it protocol income."""
    bps = state.params.equivocation_slash_bps
    due = compute_slash(power, bps)
    slashed = 0
    for maturity, position, amount in get_validator_unbondings(state, address, height):
        cut = min(compute_slash(amount, bps), due - slashed)  # never more than `due` in all
        if cut > 0:
            process_unbonding_slash(state, maturity, position, cut)
            slashed += cut
    validator = state.get_validator(address)
    if validator is None:  # it unbonded everything: jailed all the same (a later bond stays out)
        key = next(v.public_key for v in get_validator_set(state, height) if v.address == address)
        validator = Validator(key, 0)
    from_bonded = min(max(0, due - slashed), validator.bonded)
    _process_jail(state, address, validator, from_bonded)
    slashed += from_bonded
    process_protocol_income(state, slashed)
    return slashed


def process_liveness(state: State, height: int, signers: tuple[Address, ...]) -> None:
    """Record who signed the commit of `height - 1` and jail those down for too long."""
    if height < 2:
        if signers:
            raise InvalidBlock("the first block carries no last commit")
        return
    expected = get_validator_set(state, height - 1)
    expected_addresses = {v.address for v in expected}
    signed = set(signers)
    if len(signed) != len(signers) or not signed <= expected_addresses:
        raise InvalidBlock("last commit signers must be distinct members of the validator set")
    params = state.params
    window = params.downtime_window
    slot = (height - 1) % window
    for info in expected:
        validator = state.get_validator(info.address)
        if validator is None or validator.jailed:
            continue
        missed = bytearray(validator.missed or bytes(window))
        if len(missed) != window:  # the window parameter changed: start a fresh window
            missed = bytearray(window)
            validator.missed_count = 0
        now_missed = 0 if info.address in signed else 1
        if missed[slot] == now_missed:
            continue
        validator.missed_count += now_missed - missed[slot]
        missed[slot] = now_missed
        validator.missed = bytes(missed)
        if validator.missed_count > params.downtime_max_missed:
            process_slash_validator(state, info.address, validator, params.downtime_slash_bps)
        else:
            state.set_validator(info.address, validator)


def process_evidence_expiry(state: State, end_height: int) -> None:
    """At the end of block `end_height`, forget the punished offences that no later block
    can name (their height is below the next block's window), and raise the floor to that
    window's start so they stay refused if the window is lengthened."""
    start = end_height + 1 - get_evidence_window(state.params)
    expired = []
    for key in state.kv.keys_in_table(EVIDENCE_TABLE):  # sorted: by offence height
        if int.from_bytes(key[len(EVIDENCE_TABLE):len(EVIDENCE_TABLE) + 8], "big") >= start:
            break
        expired.append(key)
    if not expired:
        return
    for key in expired:
        state.kv.delete(key)
    if start > get_evidence_floor(state):
        state.kv.set(K_EVIDENCE_FLOOR, cbor2.dumps(start))


def get_evidence_height(state: State, evidence: Misbehaviour) -> int | None:
    """The height at which this evidence was applied, or None (never, or pruned)."""
    raw = state.kv.get(_evidence_key(evidence))
    return None if raw is None else int(cbor2.loads(raw))

