"""Jobs and escrow: post, volunteer, submit, attest, pay, fail, cancel, expire.

Lifecycle: open -> assigned -> training -> evaluating -> completed | failed, plus
cancelled (by the client while open) and expired (deadline reached, any non-final state).

- `PostJob` moves `budget` into the job's escrow and charges `network_fee_bps` (1%) of it
  on top, into the block's fee pool (validators). Evaluators are drawn at posting time from
  the active evaluator pool, stake-weighted, seeded by the job id (the posting tx hash), so
  every node derives the same ones and nobody can choose them after seeing the job.
- `Volunteer`: a registered worker locks `worker_stake` from its balance. At `min_workers`
  the job is `assigned`; it keeps taking volunteers up to `max_workers` until the first
  result arrives (`training`); when every assigned worker has submitted, `evaluating`.
- `Attest`: when all required evaluators have attested:
  all accept the same model with accuracies within `agreement_threshold_bps` -> completed,
  `distribute_payment`; all reject -> failed: the client is refunded and the workers whose
  model was rejected lose their job stake; anything else is no agreement, and the job waits
  for its deadline (expired: refund, stakes returned).
- `distribute_payment` (seed 001's example: 1000 -> 900 / 50 / 50): `worker_share_bps` (90%)
  to the workers whose result is the accepted model, split by samples processed (equally if
  none reported any); `evaluator_share_bps` (5%) equally to the evaluators; the rest
  (5% plus rounding remainders) to the treasury or burned. Worker stakes are returned.

Competitive jobs (`PostJob.mode == "competitive"`): each worker trains its own model
(different hyperparameters) and the best accepted one wins.

- `SubmitResult`: each worker submits its own model; a CID another worker of the job already
  submitted is refused (`DuplicateAction`), so a worker cannot claim a share of someone
  else's model by copying its CID from the chain. The job is `training` until every
  assigned worker has submitted, then `evaluating`.
- `Attest`: per (evaluator, model): an assigned evaluator attests each submitted model once,
  from the first submission on (`training` or `evaluating`).
- The winner (`compute_competitive_winner`, pure) is, among the models that every required
  evaluator accepted with accuracies within `agreement_threshold_bps` of each other, the
  one with the highest agreed accuracy (the minimum of its attested accuracies); a tie
  goes to the lowest CID bytes.
- Settlement: when every assigned worker's model is attested by every required evaluator.
  A winner -> completed: the 90% worker share to the winner's worker, 5% equally to the
  evaluators, the rest as in federated jobs. No winner and every model rejected by every
  evaluator -> failed (refund). No winner otherwise -> the job waits for its deadline.
  At the deadline (a worker that never submitted cannot stall the job), a winner among
  the fully attested models is paid; without one the job expires (refund).
- Stakes, at every settlement: a worker whose model every required evaluator rejected is
  slashed (the attestations are the evidence); the other workers get their stake back,
  including those whose accepted model lost, and those that never submitted.

Round checkpoints (`RecordCheckpoint`, federated jobs): an assigned worker records the CID
of a round's aggregated model while the job is being worked (assigned, training,
evaluating); rounds strictly increase; the job keeps the latest (round, cid, worker).
"""

from __future__ import annotations

import hashlib

from bcai.crypto import Address
from bcai.errors import (
    DuplicateAction, InsufficientFunds, InsufficientStake, InvalidAmount, InvalidJobSpec, NotAuthorized,
    UnknownEntity, WrongState,
)
from bcai.ledger.bank import process_protocol_income
from bcai.ledger.params import BPS
from bcai.ledger.state import JOB_MODES, TERMINAL_JOB_STATES, Evaluator, Job, State
from bcai.ledger.tx import Attest, CancelJob, PostJob, RecordCheckpoint, SignedTx, SubmitResult, Volunteer

EXPIRY_QUEUE = b"jexp/"


def compute_network_fee(state: State, budget: int) -> int:
    return budget * state.params.network_fee_bps // BPS


def compute_evaluator_assignment(
    job_id: bytes, pool: list[tuple[Address, Evaluator]], count: int
) -> list[Address]:
    """Draw `count` distinct evaluators, stake-weighted, deterministically from `job_id`."""
    remaining = sorted(pool, key=lambda pair: pair[0].raw)
    chosen: list[Address] = []
    for i in range(count):
        total = sum(e.stake for _, e in remaining)
        ticket = int.from_bytes(hashlib.sha256(job_id + i.to_bytes(4, "big")).digest(), "big") % total
        for index, (address, evaluator) in enumerate(remaining):
            if ticket < evaluator.stake:
                chosen.append(address)
                del remaining[index]
                break
            ticket -= evaluator.stake
    return chosen


def process_post_job(state: State, tx: SignedTx, body: PostJob) -> None:
    params = state.params
    client = tx.sender_address
    job_id = tx.hash
    fee = compute_network_fee(state, body.budget)
    balance, nonce = state.get_account(client)
    # the budget is at least the minimum and the client holds budget + network fee
    if body.budget < params.min_job_budget:
        raise InvalidAmount(f"a job budget is at least {params.min_job_budget}")
    if balance < body.budget + fee:
        raise InsufficientFunds(f"balance {balance} < budget {body.budget} + network fee {fee}")
    # consistent worker counts, evaluator count, threshold and deadline
    if not 1 <= body.min_workers <= body.max_workers <= params.max_workers_per_job:
        raise InvalidJobSpec(f"need 1 <= min_workers <= max_workers <= {params.max_workers_per_job}")
    if not 1 <= body.required_evaluators <= params.max_evaluators_per_job:
        raise InvalidJobSpec(f"need 1 <= required_evaluators <= {params.max_evaluators_per_job}")
    if body.agreement_threshold_bps > params.max_agreement_threshold_bps:
        raise InvalidJobSpec(f"agreement threshold above {params.max_agreement_threshold_bps} bps")
    if not state.height < body.deadline_height <= state.height + params.max_job_duration:
        raise InvalidJobSpec(f"deadline must be in ({state.height}, {state.height + params.max_job_duration}]")
    if body.mode not in JOB_MODES:
        raise InvalidJobSpec(f"mode must be one of {JOB_MODES}, got {body.mode!r}")
    if body.worker_stake < params.min_worker_stake:
        raise InsufficientStake(f"a job's worker stake is at least {params.min_worker_stake}")
    # enough evaluators (other than the client) to assign
    pool = [(a, e) for a, e in state.get_active_evaluators() if a != client]
    if len(pool) < body.required_evaluators:
        raise WrongState(f"the evaluator pool has {len(pool)} evaluators, the job needs {body.required_evaluators}")
    if state.get_job(job_id) is not None:
        raise DuplicateAction("job already posted")
    evaluators = compute_evaluator_assignment(job_id, pool, body.required_evaluators)
    state.set_account(client, balance - body.budget - fee, nonce)
    state.set_fee_pool(state.fee_pool + fee)
    job = Job(
        client, body.spec_cid, body.budget, body.budget, body.required_evaluators,
        body.agreement_threshold_bps, body.deadline_height, body.min_workers, body.max_workers,
        body.worker_stake, state.height, evaluators=[a.raw for a in evaluators], mode=body.mode,
    )
    state.set_job(job_id, job)
    state.push_queue(EXPIRY_QUEUE, body.deadline_height, job_id)


def _get_job(state: State, job_id: bytes) -> Job:
    job = state.get_job(job_id)
    if job is None:
        raise UnknownEntity(f"unknown job {job_id.hex()}")
    return job


def process_volunteer(state: State, tx: SignedTx, body: Volunteer) -> None:
    worker_address = tx.sender_address
    job = _get_job(state, body.job_id)
    worker = state.get_worker(worker_address)
    # a registered worker, not the job's evaluator, joining an open job with room left
    if worker is None or worker.deleted:
        raise NotAuthorized("only registered workers volunteer")
    if worker_address.raw in job.evaluators:
        raise NotAuthorized("a job's evaluator cannot be its worker")
    if job.status not in ("open", "assigned"):
        raise WrongState(f"job is {job.status}, not taking workers")
    if worker_address.raw in job.workers:
        raise DuplicateAction("already a worker of this job")
    if len(job.workers) >= job.max_workers:
        raise WrongState("job has its maximum number of workers")
    balance, nonce = state.get_account(worker_address)
    if balance < job.worker_stake:
        raise InsufficientFunds(f"balance {balance} < job stake {job.worker_stake}")
    state.set_account(worker_address, balance - job.worker_stake, nonce)
    job.workers[worker_address.raw] = job.worker_stake
    if len(job.workers) >= job.min_workers:
        job.status = "assigned"
    state.set_job(body.job_id, job)


def process_submit_result(state: State, tx: SignedTx, body: SubmitResult) -> None:
    worker_address = tx.sender_address.raw
    job = _get_job(state, body.job_id)
    # an assigned worker of a job in training or evaluation, submitting once
    if worker_address not in job.workers:
        raise NotAuthorized("the sender is not assigned to this job")
    if job.status not in ("assigned", "training", "evaluating"):
        raise WrongState(f"job is {job.status}, not taking results")
    if worker_address in job.results:
        raise DuplicateAction("result already submitted")
    model = body.model_cid.to_bytes()
    if job.mode == "competitive":
        if any(cid == model for cid, _ in job.results.values()):
            raise DuplicateAction("another worker of this competitive job already submitted this model")
        job.results[worker_address] = (model, body.samples_processed)
        job.status = "evaluating" if len(job.results) == len(job.workers) else "training"
        state.set_job(body.job_id, job)
        return
    job.results[worker_address] = (model, body.samples_processed)
    # Evaluation opens once more than half of the workers have submitted, so a worker that
    # died mid-job cannot hold the job back; later results are still taken until the verdict.
    if job.status != "evaluating":
        job.status = "evaluating" if 2 * len(job.results) > len(job.workers) else "training"
    state.set_job(body.job_id, job)


def process_attest(state: State, tx: SignedTx, body: Attest) -> None:
    evaluator_address = tx.sender_address.raw
    job = _get_job(state, body.job_id)
    if job.mode == "competitive":
        process_competitive_attest(state, body, job, evaluator_address)
        return
    model = body.model_cid.to_bytes()
    # an assigned evaluator of a job in evaluation, once, about a submitted model
    if evaluator_address not in job.evaluators:
        raise NotAuthorized("the sender is not an evaluator of this job")
    if job.status != "evaluating":
        raise WrongState(f"job is {job.status}, not in evaluation")
    if evaluator_address in job.attestations:
        raise DuplicateAction("already attested")
    if model not in {cid for cid, _ in job.results.values()}:
        raise UnknownEntity("no worker submitted this model")
    job.attestations[evaluator_address] = (model, body.accuracy_bps, body.accept)
    if len(job.attestations) == job.required_evaluators:
        process_verdict(state, body.job_id, job)
    else:
        state.set_job(body.job_id, job)


def process_verdict(state: State, job_id: bytes, job: Job) -> None:
    """All evaluators have attested: complete, fail, or leave the job to its deadline."""
    verdicts = list(job.attestations.values())
    models = {model for model, _, _ in verdicts}
    accuracies = [acc for _, acc, _ in verdicts]
    if all(accept for _, _, accept in verdicts) and len(models) == 1 \
            and max(accuracies) - min(accuracies) <= job.agreement_threshold_bps:
        distribute_payment(state, job_id, job, models.pop())
    elif not any(accept for _, _, accept in verdicts):
        process_job_failure(state, job_id, job, rejected=models)
    else:
        state.set_job(job_id, job)  # no agreement: expires at the deadline


def process_competitive_attest(state: State, body: Attest, job: Job, evaluator_address: bytes) -> None:
    model = body.model_cid.to_bytes()
    # an assigned evaluator, once per submitted model, from the first submission to the verdict
    if evaluator_address not in job.evaluators:
        raise NotAuthorized("the sender is not an evaluator of this job")
    if job.status not in ("training", "evaluating"):
        raise WrongState(f"job is {job.status}, not taking attestations")
    if model not in {cid for cid, _ in job.results.values()}:
        raise UnknownEntity("no worker submitted this model")
    if evaluator_address in job.verdicts.get(model, {}):
        raise DuplicateAction("already attested this model")
    job.verdicts.setdefault(model, {})[evaluator_address] = (body.accuracy_bps, body.accept)
    fully_attested = all(len(job.verdicts.get(cid, {})) == job.required_evaluators for cid, _ in job.results.values())
    if len(job.results) == len(job.workers) and fully_attested:
        process_competitive_settlement(state, body.job_id, job, at_deadline=False)
    else:
        state.set_job(body.job_id, job)


def compute_competitive_winner(job: Job) -> bytes | None:
    """The winning model of a competitive job so far (see the module docstring), or None."""
    best: tuple[int, bytes] | None = None
    for model, by_evaluator in sorted(job.verdicts.items()):
        accuracies = [acc for acc, _ in by_evaluator.values()]
        if len(by_evaluator) != job.required_evaluators or not all(ok for _, ok in by_evaluator.values()) \
                or max(accuracies) - min(accuracies) > job.agreement_threshold_bps:
            continue
        if best is None or min(accuracies) > best[0]:  # sorted by CID: a tie keeps the lowest
            best = (min(accuracies), model)
    return None if best is None else best[1]


def compute_rejected_models(job: Job) -> set[bytes]:
    """Models of a competitive job that every required evaluator rejected."""
    return {model for model, by in job.verdicts.items()
            if len(by) == job.required_evaluators and not any(ok for _, ok in by.values())}


def process_competitive_settlement(state: State, job_id: bytes, job: Job, at_deadline: bool) -> None:
    """Every model is attested (or the deadline came): pay the winner, fail, or wait."""
    winner = compute_competitive_winner(job)
    rejected = compute_rejected_models(job)
    slash = {addr for addr, (cid, _) in job.results.items() if cid in rejected}
    if winner is not None:
        distribute_payment(state, job_id, job, winner, evaluators=set(job.verdicts[winner]), slash=slash)
    elif rejected == {cid for cid, _ in job.results.values()} and not at_deadline:
        _refund_and_close(state, job_id, job, "failed", slash=slash)
    elif at_deadline:
        _refund_and_close(state, job_id, job, "expired", slash=slash)
    else:
        state.set_job(job_id, job)  # no agreement: settles at the deadline


def distribute_payment(state: State, job_id: bytes, job: Job, model: bytes, evaluators: set[bytes] | None = None,
                       slash: set[bytes] | None = None) -> None:
    """Pay the accepted `model`'s workers and the `evaluators` (default: those that attested)
    and return worker stakes except `slash` (default: workers that submitted another model)."""
    params = state.params
    budget = job.escrow
    worker_pool = budget * params.worker_share_bps // BPS
    evaluator_pool = budget * params.evaluator_share_bps // BPS
    winners = sorted(addr for addr, (cid, _) in job.results.items() if cid == model)
    total_samples = sum(job.results[addr][1] for addr in winners)
    paid = 0
    for addr in winners:
        share = (worker_pool * job.results[addr][1] // total_samples) if total_samples else worker_pool // len(winners)
        state.add_balance(Address(addr), share)
        paid += share
        worker = state.get_worker(Address(addr))
        if worker is not None:
            worker.reputation += 1
            state.set_worker(Address(addr), worker)
    per_evaluator = evaluator_pool // len(job.evaluators)
    for addr in sorted(job.attestations if evaluators is None else evaluators):
        state.add_balance(Address(addr), per_evaluator)
        paid += per_evaluator
        evaluator = state.get_evaluator(Address(addr))
        if evaluator is not None:
            evaluator.jobs_attested += 1
            state.set_evaluator(Address(addr), evaluator)
    process_protocol_income(state, budget - paid)
    # Every worker of a job must submit the model the job's protocol produced (federated:
    # the one agreed aggregate). One that submitted another model than the accepted one
    # deviated provably: no pay, and its job stake is slashed. A worker that submitted
    # nothing (it crashed) gets its stake back and no pay.
    if slash is None:
        slash = {addr for addr, (cid, _) in job.results.items() if cid != model}
    _return_worker_stakes(state, job, slash=slash)
    _close(state, job_id, job, "completed")


def process_job_failure(state: State, job_id: bytes, job: Job, rejected: set[bytes]) -> None:
    """Evaluators rejected: refund the client; workers whose model was rejected lose their stake."""
    slashed = {addr for addr, (cid, _) in job.results.items() if cid in rejected}
    _refund_and_close(state, job_id, job, "failed", slash=slashed)


def _refund_and_close(state: State, job_id: bytes, job: Job, status: str, slash: set[bytes]) -> None:
    state.add_balance(job.client, job.escrow)
    _return_worker_stakes(state, job, slash=slash)
    _close(state, job_id, job, status)


def _return_worker_stakes(state: State, job: Job, slash: set[bytes]) -> None:
    for addr, stake in sorted(job.workers.items()):
        if addr in slash:
            process_protocol_income(state, stake)
            worker = state.get_worker(Address(addr))
            if worker is not None:
                worker.slash_count += 1
                worker.slashed_total += stake
                worker.reputation -= 1
                state.set_worker(Address(addr), worker)
        else:
            state.add_balance(Address(addr), stake)
        job.workers[addr] = 0


def _close(state: State, job_id: bytes, job: Job, status: str) -> None:
    if job.deadline_height >= state.height:
        state.remove_from_queue(EXPIRY_QUEUE, job.deadline_height, job_id)
    job.escrow = 0
    job.status = status
    state.set_job(job_id, job)


def process_cancel_job(state: State, tx: SignedTx, body: CancelJob) -> None:
    job = _get_job(state, body.job_id)
    # only the client, only while open
    if tx.sender_address != job.client:
        raise NotAuthorized("only the job's client cancels it")
    if job.status != "open":
        raise WrongState(f"job is {job.status}; only open jobs can be cancelled")
    _refund_and_close(state, body.job_id, job, "cancelled", slash=set())


def process_record_checkpoint(state: State, tx: SignedTx, body: RecordCheckpoint) -> None:
    worker_address = tx.sender_address.raw
    job = _get_job(state, body.job_id)
    # an assigned worker of a federated job being worked, with a later round than the latest
    if worker_address not in job.workers:
        raise NotAuthorized("the sender is not assigned to this job")
    if job.mode != "federated":
        raise WrongState("round checkpoints belong to federated jobs (a competitive job has no shared model)")
    if job.status not in ("assigned", "training", "evaluating"):
        raise WrongState(f"job is {job.status}, not being trained")
    if job.checkpoint is not None and body.round <= job.checkpoint[0]:
        raise WrongState(f"round {body.round} is not after the latest checkpoint's round {job.checkpoint[0]}")
    job.checkpoint = (body.round, body.cid.to_bytes(), worker_address)
    state.set_job(body.job_id, job)


def process_job_expiry(state: State, height: int) -> None:
    """Expire jobs whose deadline is `height`: refund the escrow, return worker stakes
    (a competitive job with a winner by then is paid instead)."""
    for job_id in state.pop_queue(EXPIRY_QUEUE, height):
        job = state.get_job(job_id)
        if job is None or job.status in TERMINAL_JOB_STATES:
            continue
        if job.mode == "competitive":
            process_competitive_settlement(state, job_id, job, at_deadline=True)
            continue
        _refund_and_close(state, job_id, job, "expired", slash=set())
