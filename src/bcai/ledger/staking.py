"""Staking: bond, unbond (released at maturity), unjail, and the validator set.

The validator set consensus uses at height h is the one computed at the end of block
h - 2 (`validator_set_delay`), so every node knows the set two heights ahead. It is stored
only when it changes (`vset/` + be64(first height in force)), with an index of those heights
in `meta/vset_index`. The history is kept for the evidence window: double-sign evidence of
height h is checked against the set of height h, up to `get_evidence_window` blocks later,
and every node must answer that from its state alone (a node-local cache would make a block
valid on one node and invalid on a restarted one). A set is pruned once every height it
covered is older than any the next block may need (evidence, and the previous height for
downtime accounting), checked at every block; at most one set per height of the window is
kept.

Validator unbondings are queued with the height they started at, so stake that leaves after
an offence is still slashed when the evidence arrives (`slashing.py`); worker and evaluator
stakes unbond through the same queue without it (no validator offence can reach them).
"""

from __future__ import annotations

from typing import Any

import cbor2

from bcai.crypto import Address, PublicKey
from bcai.errors import InsufficientFunds, InsufficientStake, InvalidAmount, UnknownEntity, WrongState
from bcai.ledger.params import get_evidence_window
from bcai.ledger.state import K_VSET_INDEX, State, Validator, ValidatorInfo, be64
from bcai.ledger.tx import Bond, SignedTx, Unbond, Unjail

UNBONDING_QUEUE = b"unbq/"


def process_bond(state: State, tx: SignedTx, body: Bond) -> None:
    sender = tx.sender_address
    balance, nonce = state.get_account(sender)
    validator = state.get_validator(sender) or Validator(tx.sender, 0)
    # a positive amount the sender holds, reaching at least the minimum bond
    if body.amount <= 0:
        raise InvalidAmount("bond amount must be positive")
    if balance < body.amount:
        raise InsufficientFunds(f"balance {balance} < bond {body.amount}")
    if validator.bonded + body.amount < state.params.min_validator_bond:
        raise InsufficientStake(f"a validator bonds at least {state.params.min_validator_bond}")
    state.set_account(sender, balance - body.amount, nonce)
    validator.bonded += body.amount
    state.set_validator(sender, validator)


def process_unbond(state: State, tx: SignedTx, body: Unbond) -> None:
    sender = tx.sender_address
    validator = state.get_validator(sender)
    # the sender is a validator with at least this much bonded
    if validator is None:
        raise UnknownEntity("the sender has no bonded stake")
    if body.amount <= 0:
        raise InvalidAmount("unbond amount must be positive")
    if body.amount > validator.bonded:
        raise InsufficientStake(f"unbond {body.amount} > bonded {validator.bonded}")
    validator.bonded -= body.amount
    state.set_validator(sender, validator)
    state.push_queue(UNBONDING_QUEUE, state.height + state.params.unbonding_period,
                     [sender.raw, body.amount, state.height])


def process_unjail(state: State, tx: SignedTx, body: Unjail) -> None:
    sender = tx.sender_address
    validator = state.get_validator(sender)
    # a jailed validator whose jail time is over and whose stake still reaches the minimum
    if validator is None:
        raise UnknownEntity("the sender is not a validator")
    if not validator.jailed:
        raise WrongState("validator is not jailed")
    if state.height < validator.jailed_until:
        raise WrongState(f"jailed until height {validator.jailed_until}")
    if validator.bonded < state.params.min_validator_bond:
        raise InsufficientStake(f"a validator bonds at least {state.params.min_validator_bond}")
    validator.jailed = False
    validator.jailed_until = 0
    validator.missed = b""
    validator.missed_count = 0
    state.set_validator(sender, validator)


def schedule_unbonding(state: State, owner: Address, amount: int) -> None:
    """Hold `amount` (a worker's or evaluator's stake) until `unbonding_period` blocks from
    now, then return it to `owner`. Validator stake is queued by `process_unbond`."""
    if amount > 0:
        state.push_queue(UNBONDING_QUEUE, state.height + state.params.unbonding_period, [owner.raw, amount])


def process_unbonding_maturity(state: State, height: int) -> None:
    for entry in state.pop_queue(UNBONDING_QUEUE, height):
        state.add_balance(Address(entry[0]), entry[1])


def get_validator_unbondings(state: State, address: Address, since: int) -> list[tuple[int, int, int]]:
    """(maturity height, position in that height's queue, amount) of the validator stake
    `address` started unbonding at height `since` or later and that has not matured yet."""
    found = []
    for key in state.kv.keys_in_table(UNBONDING_QUEUE):
        maturity = int.from_bytes(key[len(UNBONDING_QUEUE):], "big")
        for position, entry in enumerate(state.get_queue(UNBONDING_QUEUE, maturity)):
            if len(entry) == 3 and entry[0] == address.raw and entry[2] >= since and entry[1] > 0:
                found.append((maturity, position, entry[1]))
    return found


def process_unbonding_slash(state: State, maturity: int, position: int, amount: int) -> None:
    """Take `amount` out of one queued unbonding (the caller sends it to protocol income)."""
    entries = state.get_queue(UNBONDING_QUEUE, maturity)
    entries[position][1] -= amount
    state.kv.set(UNBONDING_QUEUE + be64(maturity), cbor2.dumps(entries, canonical=True))


def compute_validator_set(state: State) -> list[ValidatorInfo]:
    """The set from current stakes: unjailed, bonded >= minimum, top `max_validators` by power.

    Sorted by power (descending), then address (ascending): the deterministic order consensus
    uses for proposer priority.
    """
    params = state.params
    candidates = [
        ValidatorInfo(address, v.public_key, v.bonded)
        for address, v in state.get_all_validators()
        if not v.jailed and v.bonded >= params.min_validator_bond
    ]
    candidates.sort(key=lambda info: (-info.power, info.address.raw))
    return candidates[: params.max_validators]


def _encode_set(validators: list[ValidatorInfo]) -> list[Any]:
    return [[v.address.raw, v.public_key.raw, v.power] for v in validators]


def _vset_index(state: State) -> list[int]:
    raw = state.kv.get(K_VSET_INDEX)
    return [] if raw is None else list(cbor2.loads(raw))


def get_validator_set(state: State, height: int) -> list[ValidatorInfo]:
    """The validator set in force at `height`: known up to two heights ahead of the state and
    back to the evidence window (`get_evidence_window`); `UnknownEntity` outside that."""
    if height < 1:
        raise UnknownEntity(f"no validator set before height 1 (asked for {height})")
    index = _vset_index(state)
    starts = [h for h in index if h <= height]
    if not starts:
        raise UnknownEntity(f"the validator set of height {height} is no longer kept (sets are kept from height "
                            f"{index[0] if index else 1})")
    raw = state.kv.get(b"vset/" + be64(max(starts)))
    assert raw is not None
    return [ValidatorInfo(Address(a), PublicKey(k), p) for a, k, p in cbor2.loads(raw)]


def get_validator_set_start(state: State) -> int:
    """The oldest height whose validator set the state still holds."""
    index = _vset_index(state)
    return index[0] if index else 1


def get_total_power(validators: list[ValidatorInfo]) -> int:
    return sum(v.power for v in validators)


def process_validator_set_update(state: State, end_height: int) -> None:
    """At the end of block `end_height`, record the set for `end_height + 2` if it changed."""
    new = _encode_set(compute_validator_set(state))
    index = _vset_index(state)
    changed = not index or cbor2.loads(state.kv.get(b"vset/" + be64(index[-1])) or b"\x80") != new
    if changed:
        start = end_height + state.params.validator_set_delay
        state.kv.set(b"vset/" + be64(start), cbor2.dumps(new, canonical=True))
        if start not in index:
            index.append(start)
    # prune at every block, not only when a set changes (else sets that left the window
    # stayed until the next change): drop a set once the next one is in force at the oldest
    # height the next block may need, the evidence window's start (downtime accounting
    # needs only end_height)
    oldest_needed = end_height + 1 - get_evidence_window(state.params)
    pruned = False
    while len(index) >= 2 and index[1] <= oldest_needed:
        state.kv.delete(b"vset/" + be64(index.pop(0)))
        pruned = True
    if changed or pruned:
        state.kv.set(K_VSET_INDEX, cbor2.dumps(index, canonical=True))


def process_genesis_validator_set(state: State) -> None:
    """Record the genesis set as in force from height 1."""
    new = _encode_set(compute_validator_set(state))
    state.kv.set(b"vset/" + be64(1), cbor2.dumps(new, canonical=True))
    state.kv.set(K_VSET_INDEX, cbor2.dumps([1], canonical=True))
