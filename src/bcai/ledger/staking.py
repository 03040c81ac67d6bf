"""Staking: bond, unbond (released at maturity), unjail, and the validator set.

The validator set consensus uses at height h is the one computed at the end of block
h - 2 (`validator_set_delay`), so every node knows the set two heights ahead. It is stored
only when it changes (`vset/` + be64(first height in force)), with an index of those heights
in `meta/vset_index`; old entries are pruned once no height the chain still needs
(the previous one, for downtime accounting) falls in their range.
"""

from __future__ import annotations

from typing import Any

import cbor2

from bcai.crypto import Address, PublicKey
from bcai.errors import InsufficientFunds, InsufficientStake, InvalidAmount, UnknownEntity, WrongState
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
    schedule_unbonding(state, sender, body.amount)


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
    """Hold `amount` until `unbonding_period` blocks from now, then return it to `owner`."""
    if amount > 0:
        state.push_queue(UNBONDING_QUEUE, state.height + state.params.unbonding_period, [owner.raw, amount])


def process_unbonding_maturity(state: State, height: int) -> None:
    for owner, amount in state.pop_queue(UNBONDING_QUEUE, height):
        state.add_balance(Address(owner), amount)


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
    """The validator set in force at `height` (known up to two heights ahead of the state)."""
    index = _vset_index(state)
    starts = [h for h in index if h <= height]
    if not starts:
        raise UnknownEntity(f"no validator set recorded for height {height}")
    raw = state.kv.get(b"vset/" + be64(max(starts)))
    assert raw is not None
    return [ValidatorInfo(Address(a), PublicKey(k), p) for a, k, p in cbor2.loads(raw)]


def get_total_power(validators: list[ValidatorInfo]) -> int:
    return sum(v.power for v in validators)


def process_validator_set_update(state: State, end_height: int) -> None:
    """At the end of block `end_height`, record the set for `end_height + 2` if it changed."""
    new = _encode_set(compute_validator_set(state))
    index = _vset_index(state)
    if index:
        current = cbor2.loads(state.kv.get(b"vset/" + be64(index[-1])) or b"\x80")
        if current == new:
            return
    start = end_height + state.params.validator_set_delay
    state.kv.set(b"vset/" + be64(start), cbor2.dumps(new, canonical=True))
    if start not in index:
        index.append(start)
    # prune: drop a set once the next one is already in force at the previous height
    while len(index) >= 2 and index[1] <= end_height - 1:
        state.kv.delete(b"vset/" + be64(index.pop(0)))
    state.kv.set(K_VSET_INDEX, cbor2.dumps(index, canonical=True))


def process_genesis_validator_set(state: State) -> None:
    """Record the genesis set as in force from height 1."""
    new = _encode_set(compute_validator_set(state))
    state.kv.set(b"vset/" + be64(1), cbor2.dumps(new, canonical=True))
    state.kv.set(K_VSET_INDEX, cbor2.dumps([1], canonical=True))
