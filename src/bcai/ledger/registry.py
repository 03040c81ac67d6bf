"""Worker registry and evaluator pool: stake, capabilities, reputation, slash record, soft delete.

A deregistered worker or evaluator keeps its record (reputation and slash record are history
that a returning node must not shed); its stake goes through the same unbonding delay as a
validator's, so a stake cannot leave before misbehaviour found just after it can be slashed.
"""

from __future__ import annotations

from bcai.errors import AlreadyExists, InsufficientFunds, InsufficientStake, UnknownEntity, WrongState
from bcai.ledger.staking import schedule_unbonding
from bcai.ledger.state import Evaluator, State, Worker
from bcai.ledger.tx import (
    DeregisterEvaluator, DeregisterWorker, RegisterEvaluator, RegisterWorker, SignedTx, UpdateWorker,
)


def _take(state: State, tx: SignedTx, amount: int) -> None:
    balance, nonce = state.get_account(tx.sender_address)
    if balance < amount:
        raise InsufficientFunds(f"balance {balance} < {amount}")
    state.set_account(tx.sender_address, balance - amount, nonce)


def process_register_worker(state: State, tx: SignedTx, body: RegisterWorker) -> None:
    sender = tx.sender_address
    existing = state.get_worker(sender)
    # not registered already (a soft-deleted worker may register again, keeping its history)
    if existing is not None and not existing.deleted:
        raise AlreadyExists("worker already registered")
    # the stake reaches the minimum and the sender holds it
    if body.stake < state.params.min_worker_stake:
        raise InsufficientStake(f"a worker stakes at least {state.params.min_worker_stake}")
    _take(state, tx, body.stake)
    if existing is None:
        worker = Worker(body.stake, body.capabilities, registered_height=state.height)
    else:
        worker = existing
        worker.stake, worker.capabilities, worker.deleted = body.stake, body.capabilities, False
    state.set_worker(sender, worker)


def process_update_worker(state: State, tx: SignedTx, body: UpdateWorker) -> None:
    worker = state.get_worker(tx.sender_address)
    # a registered, not deleted worker
    if worker is None or worker.deleted:
        raise UnknownEntity("the sender is not a registered worker")
    _take(state, tx, body.add_stake)
    worker.capabilities = body.capabilities
    worker.stake += body.add_stake
    state.set_worker(tx.sender_address, worker)


def process_deregister_worker(state: State, tx: SignedTx, body: DeregisterWorker) -> None:
    worker = state.get_worker(tx.sender_address)
    if worker is None:
        raise UnknownEntity("the sender is not a registered worker")
    if worker.deleted:
        raise WrongState("worker already deregistered")
    schedule_unbonding(state, tx.sender_address, worker.stake)
    worker.stake, worker.deleted = 0, True
    state.set_worker(tx.sender_address, worker)


def process_register_evaluator(state: State, tx: SignedTx, body: RegisterEvaluator) -> None:
    sender = tx.sender_address
    existing = state.get_evaluator(sender)
    # not an active evaluator already; the stake reaches the minimum and the sender holds it
    if existing is not None and existing.active:
        raise AlreadyExists("evaluator already registered")
    if body.stake < state.params.min_evaluator_stake:
        raise InsufficientStake(f"an evaluator stakes at least {state.params.min_evaluator_stake}")
    _take(state, tx, body.stake)
    evaluator = existing or Evaluator(0)
    evaluator.stake, evaluator.active = body.stake, True
    state.set_evaluator(sender, evaluator)


def process_deregister_evaluator(state: State, tx: SignedTx, body: DeregisterEvaluator) -> None:
    evaluator = state.get_evaluator(tx.sender_address)
    if evaluator is None:
        raise UnknownEntity("the sender is not a registered evaluator")
    if not evaluator.active:
        raise WrongState("evaluator already deregistered")
    schedule_unbonding(state, tx.sender_address, evaluator.stake)
    evaluator.stake, evaluator.active = 0, False
    state.set_evaluator(tx.sender_address, evaluator)
