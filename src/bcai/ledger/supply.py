"""Supply accounting: where every token is, and the invariants tests and the simulator check.

total supply = balances + validator stake (bonded) + unbonding + worker stakes
             + evaluator stakes + job escrow + locked job stakes + treasury + fee pool

and it must equal `meta/supply`, which only mint (genesis, block reward) and burn (Burn tx,
burned protocol shares and slashes) change. This walks the whole state: it is a check, not
part of block processing.
"""

from __future__ import annotations

import cbor2

from bcai.errors import InvariantViolation
from bcai.ledger.state import State


def compute_supply_breakdown(state: State) -> dict[str, int]:
    kv = state.kv
    parts = {
        "balances": 0, "bonded": 0, "unbonding": 0, "worker_stakes": 0, "evaluator_stakes": 0,
        "escrow": 0, "job_stakes": 0, "treasury": state.treasury, "fee_pool": state.fee_pool,
    }
    for key in kv.keys_in_table(b"acct/"):
        parts["balances"] += cbor2.loads(kv.get(key))[0]  # type: ignore[arg-type]
    for _, validator in state.get_all_validators():
        parts["bonded"] += validator.bonded
    for key in kv.keys_in_table(b"unbq/"):
        parts["unbonding"] += sum(entry[1] for entry in cbor2.loads(kv.get(key)))  # type: ignore[arg-type]
    for key in kv.keys_in_table(b"wrk/"):
        parts["worker_stakes"] += cbor2.loads(kv.get(key))[0]  # type: ignore[arg-type]
    for key in kv.keys_in_table(b"evl/"):
        parts["evaluator_stakes"] += cbor2.loads(kv.get(key))[0]  # type: ignore[arg-type]
    for _, job in state.get_all_jobs():
        parts["escrow"] += job.escrow
        parts["job_stakes"] += job.locked_stake()
    return parts


def compute_total_supply(state: State) -> int:
    """Every token the state holds, wherever it is."""
    return sum(compute_supply_breakdown(state).values())


def check_invariants(state: State) -> None:
    """Raise `InvariantViolation` unless supply is conserved, nothing is negative, escrow adds up."""
    parts = compute_supply_breakdown(state)
    total = sum(parts.values())
    if total != state.supply:
        raise InvariantViolation(f"tokens held {total} != minted - burned {state.supply}: {parts}")
    kv = state.kv
    for key in kv.keys_in_table(b"acct/"):
        balance, nonce = cbor2.loads(kv.get(key))  # type: ignore[arg-type]
        if balance < 0 or nonce < 0:
            raise InvariantViolation(f"negative balance or nonce at {key.hex()}")
    for name, value in parts.items():
        if value < 0:
            raise InvariantViolation(f"negative {name}: {value}")
    for job_id, job in state.get_all_jobs():
        if job.status in ("completed", "failed", "cancelled", "expired"):
            if job.escrow != 0 or job.locked_stake() != 0:
                raise InvariantViolation(f"job {job_id.hex()} is {job.status} but still holds tokens")
        elif job.escrow != job.budget:
            raise InvariantViolation(f"job {job_id.hex()} escrow {job.escrow} != budget {job.budget}")
