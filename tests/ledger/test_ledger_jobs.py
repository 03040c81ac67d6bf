"""Worker registry, evaluator pool, jobs and escrow: every path of the job lifecycle."""

import pytest
from hypothesis import given, settings, strategies as st

from bcai.crypto import Address, Cid, PrivateKey
from bcai.errors import (
    AlreadyExists, DuplicateAction, InsufficientFunds, InsufficientStake, InvalidAmount, InvalidJobSpec,
    NotAuthorized, UnknownEntity, WrongState,
)
from bcai.ledger import (
    Attest, CancelJob, DeregisterEvaluator, DeregisterWorker, PostJob, RegisterEvaluator, RegisterWorker,
    SubmitResult, UpdateWorker, Volunteer,
)
from bcai.ledger.jobs import compute_evaluator_assignment
from bcai.ledger.state import Evaluator
from ledger_support import CAPS

SPEC = Cid.of(b"job spec")
MODEL = Cid.of(b"model weights")
OTHER_MODEL = Cid.of(b"other weights")
EVAL_NAMES = ("eval1", "eval2", "eval3")


def post(chain, budget=1000, workers=3, evaluators=2, threshold=100, deadline=50, stake=20, name="alice"):
    for w in ("worker1", "worker2", "worker3"):
        if chain.state.get_worker(chain.addr(w)) is None:
            chain.tx(w, RegisterWorker(100, CAPS))
    body = PostJob(SPEC, budget, evaluators, threshold, deadline, workers, workers, stake)
    return chain.tx(name, body).hash


def evaluator_names(chain, job_id):
    job = chain.state.get_job(job_id)
    return [n for n in EVAL_NAMES if chain.addr(n).raw in job.evaluators]


def run_to_evaluation(chain, job_id, samples=(100, 100, 100), models=(MODEL, MODEL, MODEL)):
    for w in ("worker1", "worker2", "worker3")[: len(samples)]:
        chain.tx(w, Volunteer(job_id))
    for w, n, m in zip(("worker1", "worker2", "worker3"), samples, models):
        chain.tx(w, SubmitResult(job_id, m, n, {"loss_micro": 12345}))


def test_register_update_deregister_worker(chain):
    chain.tx("worker1", RegisterWorker(100, CAPS))
    assert chain.balance("worker1") == 1_000_000 - 101
    chain.tx("worker1", UpdateWorker(CAPS.__class__(4, 8192, 0, 0, 100, "cpu"), 50))
    w = chain.state.get_worker(chain.addr("worker1"))
    assert (w.stake, w.capabilities.node_type) == (150, "cpu")
    chain.tx("worker1", DeregisterWorker())
    w = chain.state.get_worker(chain.addr("worker1"))
    assert w.deleted and w.stake == 0  # soft delete: the record stays
    chain.reject("worker1", DeregisterWorker(), WrongState)
    chain.reject("worker1", UpdateWorker(CAPS, 0), UnknownEntity)
    chain.tx("worker1", RegisterWorker(100, CAPS))  # re-registration keeps the history
    assert not chain.state.get_worker(chain.addr("worker1")).deleted


def test_invalid_register_worker(chain):
    chain.reject("worker1", RegisterWorker(1, CAPS), InsufficientStake)
    chain.reject("worker1", RegisterWorker(2_000_000, CAPS), InsufficientFunds)
    chain.tx("worker1", RegisterWorker(100, CAPS))
    chain.reject("worker1", RegisterWorker(100, CAPS), AlreadyExists)
    chain.reject("worker2", DeregisterWorker(), UnknownEntity)


def test_evaluator_register_and_deregister(chain):
    chain.tx("alice", RegisterEvaluator(50))
    chain.reject("alice", RegisterEvaluator(50), AlreadyExists)
    chain.tx("alice", DeregisterEvaluator())
    chain.reject("alice", DeregisterEvaluator(), WrongState)
    chain.reject("bob", DeregisterEvaluator(), UnknownEntity)
    chain.reject("bob", RegisterEvaluator(1), InsufficientStake)


def test_evaluator_assignment_is_deterministic_and_stake_weighted():
    pool = [(PrivateKey.from_label(f"e{i}").address, Evaluator(stake)) for i, stake in enumerate((1, 1, 98))]
    heavy = pool[2][0]
    picks = [compute_evaluator_assignment(bytes([i]) * 32, pool, 1)[0] for i in range(200)]
    assert picks.count(heavy) > 170
    two = compute_evaluator_assignment(b"\x07" * 32, pool, 2)
    assert len(set(two)) == 2 and two == compute_evaluator_assignment(b"\x07" * 32, list(reversed(pool)), 2)


def test_job_completes_and_pays_900_50_50(chain):
    job_id = post(chain)
    alice = chain.balance("alice")
    assert chain.state.get_job(job_id).status == "open"
    assert chain.state.fee_pool == 1 * 4 + 10  # four tx fees + 1% network fee
    treasury = chain.state.treasury
    before = {n: chain.balance(n) for n in ("worker1", "worker2", "worker3", *EVAL_NAMES)}
    run_to_evaluation(chain, job_id)
    job = chain.state.get_job(job_id)
    assert job.status == "evaluating" and job.locked_stake() == 60
    e1, e2 = evaluator_names(chain, job_id)
    chain.tx(e1, Attest(job_id, MODEL, 8500, True))
    assert chain.state.get_job(job_id).status == "evaluating"
    chain.tx(e2, Attest(job_id, MODEL, 8550, True))
    job = chain.state.get_job(job_id)
    assert job.status == "completed" and job.escrow == 0
    for w in ("worker1", "worker2", "worker3"):
        assert chain.balance(w) - before[w] == 300 - 2  # 300 paid, stake back, two tx fees
        assert chain.state.get_worker(chain.addr(w)).reputation == 1
    for e in (e1, e2):
        assert chain.balance(e) - before[e] == 25 - 1
    assert chain.state.treasury - treasury == 50
    assert chain.balance("alice") == alice


def test_payment_split_by_samples(chain):
    job_id = post(chain, budget=10_000)
    run_to_evaluation(chain, job_id, samples=(100, 300, 600))
    before = {w: chain.balance(w) for w in ("worker1", "worker2", "worker3")}
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 9000, True))
    gains = [chain.balance(w) - before[w] - 20 for w in ("worker1", "worker2", "worker3")]
    assert gains == [900, 2700, 5400]


def test_deviating_model_is_not_paid_and_its_stake_is_slashed(chain):
    job_id = post(chain)
    run_to_evaluation(chain, job_id, models=(MODEL, OTHER_MODEL, MODEL))
    before = {w: chain.balance(w) for w in ("worker1", "worker2", "worker3")}
    treasury = chain.state.treasury
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 9000, True))
    assert [chain.balance(w) - before[w] for w in ("worker1", "worker2", "worker3")] == [470, 0, 470]
    assert chain.state.treasury - treasury == 50 + 20  # the treasury share and the slashed stake
    w2 = chain.state.get_worker(chain.addr("worker2"))
    assert (w2.slash_count, w2.slashed_total) == (1, 20)


def test_evaluation_opens_at_a_majority_and_a_silent_worker_is_not_paid(chain):
    job_id = post(chain)
    for w in ("worker1", "worker2", "worker3"):
        chain.tx(w, Volunteer(job_id))
    chain.tx("worker1", SubmitResult(job_id, MODEL, 10, {}))
    assert chain.state.get_job(job_id).status == "training"
    chain.tx("worker2", SubmitResult(job_id, MODEL, 10, {}))
    assert chain.state.get_job(job_id).status == "evaluating"  # 2 of 3: worker3 died
    before = {w: chain.balance(w) for w in ("worker1", "worker2", "worker3")}
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 9000, True))
    assert chain.state.get_job(job_id).status == "completed"
    assert [chain.balance(w) - before[w] for w in ("worker1", "worker2", "worker3")] == [470, 470, 20]


def test_late_result_still_counts_before_the_verdict(chain):
    job_id = post(chain)
    for w in ("worker1", "worker2", "worker3"):
        chain.tx(w, Volunteer(job_id))
    chain.tx("worker1", SubmitResult(job_id, MODEL, 10, {}))
    chain.tx("worker2", SubmitResult(job_id, MODEL, 10, {}))
    chain.tx("worker3", SubmitResult(job_id, MODEL, 10, {}))  # the job is already evaluating
    assert len(chain.state.get_job(job_id).results) == 3
    chain.reject("worker3", SubmitResult(job_id, MODEL, 10, {}), DuplicateAction)


def test_job_fails_when_evaluators_reject(chain):
    job_id = post(chain)
    alice = chain.balance("alice")
    run_to_evaluation(chain, job_id)
    treasury = chain.state.treasury
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 1000, False))
    job = chain.state.get_job(job_id)
    assert job.status == "failed" and job.escrow == 0 and job.locked_stake() == 0
    assert chain.balance("alice") == alice + 1000
    assert chain.state.treasury == treasury + 60  # three job stakes slashed
    w = chain.state.get_worker(chain.addr("worker1"))
    assert (w.slash_count, w.slashed_total) == (1, 20)


def test_disagreement_waits_for_expiry_then_refunds(chain):
    job_id = post(chain, deadline=5)
    run_to_evaluation(chain, job_id)
    e1, e2 = evaluator_names(chain, job_id)
    chain.tx(e1, Attest(job_id, MODEL, 9000, True))
    chain.tx(e2, Attest(job_id, MODEL, 7000, True))  # 20 points apart, threshold is 1
    assert chain.state.get_job(job_id).status == "evaluating"
    alice, w1 = chain.balance("alice"), chain.balance("worker1")
    chain.advance(5)
    job = chain.state.get_job(job_id)
    assert job.status == "expired" and chain.balance("alice") == alice + 1000
    assert chain.balance("worker1") == w1 + 20


def test_cancel_open_job_refunds_and_returns_stakes(chain):
    job_id = post(chain)
    chain.tx("worker1", Volunteer(job_id))
    alice, w1 = chain.balance("alice"), chain.balance("worker1")
    chain.tx("alice", CancelJob(job_id))
    assert chain.state.get_job(job_id).status == "cancelled"
    assert chain.balance("alice") == alice + 1000 - 1
    assert chain.balance("worker1") == w1 + 20
    chain.advance(50)  # the expiry queue no longer holds it
    assert chain.state.get_job(job_id).status == "cancelled"


def test_expiry_of_open_job(chain):
    job_id = post(chain, deadline=3)
    alice = chain.balance("alice")
    chain.advance(3)
    assert chain.state.get_job(job_id).status == "expired"
    assert chain.balance("alice") == alice + 1000


def test_status_progression(chain):
    job_id = post(chain, workers=2)
    body = PostJob(SPEC, 1000, 2, 100, 50, 2, 3, 20)
    job2 = chain.tx("bob", body).hash
    chain.tx("worker1", Volunteer(job2))
    assert chain.state.get_job(job2).status == "open"
    chain.tx("worker2", Volunteer(job2))
    assert chain.state.get_job(job2).status == "assigned"
    chain.tx("worker1", SubmitResult(job2, MODEL, 5, {}))
    assert chain.state.get_job(job2).status == "training"
    chain.reject("worker3", Volunteer(job2), WrongState)  # volunteering closes with the first result
    chain.tx("worker2", SubmitResult(job2, MODEL, 5, {}))
    assert chain.state.get_job(job2).status == "evaluating"
    assert chain.state.get_job(job_id).status == "open"


def test_invalid_post_job(chain):
    post(chain)
    chain.reject("bob", PostJob(SPEC, 0, 2, 100, 50, 1, 1, 20), InvalidAmount)
    chain.reject("bob", PostJob(SPEC, 999_999, 2, 100, 50, 1, 1, 20), InsufficientFunds)  # + 1% fee
    chain.reject("bob", PostJob(SPEC, 1000, 2, 100, 50, 2, 1, 20), InvalidJobSpec)
    chain.reject("bob", PostJob(SPEC, 1000, 0, 100, 50, 1, 1, 20), InvalidJobSpec)
    chain.reject("bob", PostJob(SPEC, 1000, 2, 5000, 50, 1, 1, 20), InvalidJobSpec)
    chain.reject("bob", PostJob(SPEC, 1000, 2, 100, 0, 1, 1, 20), InvalidJobSpec)
    chain.reject("bob", PostJob(SPEC, 1000, 2, 100, 10**9, 1, 1, 20), InvalidJobSpec)
    chain.reject("bob", PostJob(SPEC, 1000, 2, 100, 50, 1, 1, 1), InsufficientStake)
    chain.reject("bob", PostJob(SPEC, 1000, 4, 100, 50, 1, 1, 20), WrongState)  # only 3 evaluators


def test_invalid_unknown_job(chain):
    missing = b"\x00" * 32
    chain.tx("worker1", RegisterWorker(100, CAPS))
    chain.reject("worker1", Volunteer(missing), UnknownEntity)
    chain.reject("worker1", SubmitResult(missing, MODEL, 1, {}), UnknownEntity)
    chain.reject("eval1", Attest(missing, MODEL, 1, True), UnknownEntity)
    chain.reject("alice", CancelJob(missing), UnknownEntity)


def test_invalid_volunteer(chain):
    job_id = post(chain, workers=1)
    chain.reject("bob", Volunteer(job_id), NotAuthorized)  # not a registered worker
    e1 = evaluator_names(chain, job_id)[0]
    chain.tx(e1, RegisterWorker(100, CAPS))
    chain.reject(e1, Volunteer(job_id), NotAuthorized)  # the job's evaluator
    chain.tx("worker1", Volunteer(job_id))
    chain.reject("worker1", Volunteer(job_id), DuplicateAction)
    chain.reject("worker2", Volunteer(job_id), WrongState)  # full


def test_invalid_result_from_unassigned_worker_or_after_the_verdict(chain):
    job_id = post(chain, workers=1)
    chain.reject("worker2", SubmitResult(job_id, MODEL, 1, {}), NotAuthorized)
    chain.tx("worker1", Volunteer(job_id))
    chain.tx("worker1", SubmitResult(job_id, MODEL, 1, {}))
    chain.reject("worker1", SubmitResult(job_id, MODEL, 1, {}), DuplicateAction)
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 9000, True))
    assert chain.state.get_job(job_id).status == "completed"
    chain.reject("worker1", SubmitResult(job_id, MODEL, 1, {}), WrongState)


def test_invalid_result_before_assignment(chain):
    job_id = post(chain, workers=2)
    chain.tx("worker1", Volunteer(job_id))
    chain.reject("worker1", SubmitResult(job_id, MODEL, 1, {}), WrongState)


def test_invalid_double_result(chain):
    job_id = post(chain, workers=2)
    chain.tx("worker1", Volunteer(job_id))
    chain.tx("worker2", Volunteer(job_id))
    chain.tx("worker1", SubmitResult(job_id, MODEL, 1, {}))
    chain.reject("worker1", SubmitResult(job_id, MODEL, 1, {}), DuplicateAction)


def test_invalid_attestation_from_non_evaluator(chain):
    job_id = post(chain)
    run_to_evaluation(chain, job_id)
    outsider = next(n for n in EVAL_NAMES if n not in evaluator_names(chain, job_id))
    chain.reject(outsider, Attest(job_id, MODEL, 9000, True), NotAuthorized)
    chain.reject("alice", Attest(job_id, MODEL, 9000, True), NotAuthorized)


def test_invalid_double_attestation(chain):
    job_id = post(chain)
    run_to_evaluation(chain, job_id)
    e1 = evaluator_names(chain, job_id)[0]
    chain.tx(e1, Attest(job_id, MODEL, 9000, True))
    chain.reject(e1, Attest(job_id, MODEL, 9000, True), DuplicateAction)


def test_invalid_attestation_of_unsubmitted_model_or_too_early(chain):
    job_id = post(chain)
    e1 = evaluator_names(chain, job_id)[0]
    chain.reject(e1, Attest(job_id, MODEL, 9000, True), WrongState)
    run_to_evaluation(chain, job_id)
    chain.reject(e1, Attest(job_id, OTHER_MODEL, 9000, True), UnknownEntity)


def test_invalid_cancel(chain):
    job_id = post(chain, workers=1)
    chain.reject("bob", CancelJob(job_id), NotAuthorized)
    chain.tx("worker1", Volunteer(job_id))
    chain.reject("alice", CancelJob(job_id), WrongState)


@pytest.mark.parametrize("accuracy", [10_001, -1])
def test_invalid_accuracy_out_of_range(chain, accuracy):
    from bcai.encoding import encode
    from bcai.errors import MalformedTransaction

    key = chain.keys["eval1"]
    body = {"job_id": b"\x00" * 32, "model_cid": MODEL.to_bytes(), "accuracy_bps": accuracy, "accept": True}
    payload = encode({"body": body, "chain": "bcai-test-1", "fee": 1, "kind": "attest", "nonce": 0,
                      "sender": key.public_key.raw})
    chain.reject(encode([payload, key.sign("tx", "bcai-test-1", payload)]), error=MalformedTransaction)


def test_worker_address_type():
    assert isinstance(PrivateKey.from_label("worker1").address, Address)


def test_invalid_update_worker_unfunded_and_volunteer_unfunded(chain):
    chain.tx("worker1", RegisterWorker(100, CAPS))
    chain.reject("worker1", UpdateWorker(CAPS, 5_000_000), InsufficientFunds)
    job_id = post(chain, stake=999_000, workers=1)  # worker1 still holds ~999,900
    chain.tx("worker1", Volunteer(job_id))
    job2 = post(chain, stake=999_000, workers=1)
    chain.reject("worker1", Volunteer(job2), InsufficientFunds)


@settings(max_examples=30, deadline=None)
@given(budget=st.integers(min_value=1, max_value=10**12), samples=st.lists(st.integers(0, 10**6), min_size=3,
                                                                           max_size=3))
def test_payment_accounts_for_every_token(budget, samples):
    from ledger_support import Chain

    chain = Chain()
    for w in ("worker1", "worker2", "worker3"):
        chain.tx(w, RegisterWorker(100, CAPS))
    body = PostJob(SPEC, min(budget, 900_000), 2, 100, 50, 3, 3, 20)
    job_id = chain.tx("alice", body).hash
    run_to_evaluation(chain, job_id, samples=tuple(samples))
    supply, treasury = chain.state.supply, chain.state.treasury
    balances = {n: chain.balance(n) for n in ("worker1", "worker2", "worker3", *EVAL_NAMES)}
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 9000, True))
    paid = sum(chain.balance(n) - balances[n] for n in balances) + 2  # two attestation fees
    escrow = body.budget
    assert paid - 60 + chain.state.treasury - treasury == escrow  # stakes returned, the rest to treasury
    assert chain.state.supply == supply
    assert chain.state.treasury - treasury >= escrow * 500 // 10_000
