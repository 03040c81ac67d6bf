"""Competitive jobs (each worker its own model, the best accepted one wins) and round
checkpoints on chain: every rule and error path. Each test that uses `chain` is also a
committed vector (tests/vectors/ledger)."""

import pytest
from hypothesis import given, settings, strategies as st

from bcai.crypto import Address, Cid
from bcai.encoding import decode, encode
from bcai.errors import DuplicateAction, InvalidJobSpec, MalformedTransaction, NotAuthorized, UnknownEntity, WrongState
from bcai.ledger import Attest, PostJob, RecordCheckpoint, SubmitResult, Volunteer, decode_tx, encode_tx
from bcai.ledger.jobs import compute_competitive_winner
from bcai.ledger.state import Job
from bcai.node.views import view_job
from test_ledger_jobs import MODEL, SPEC, evaluator_names, post

WORKERS = ("worker1", "worker2", "worker3")
M1, M2, M3 = (Cid.of(f"competitive model {i}".encode()) for i in (1, 2, 3))


def post_competitive(chain, *, workers=3, deadline=50, threshold=100, budget=1000, stake=20):
    post(chain)  # registers the workers (and posts a federated job nobody takes)
    body = PostJob(SPEC, budget, 2, threshold, deadline, workers, workers, stake, mode="competitive")
    return chain.tx("bob", body).hash


def submit_all(chain, job_id, models=(M1, M2, M3), samples=(100, 100, 100)):
    for w in WORKERS[: len(models)]:
        chain.tx(w, Volunteer(job_id))
    for w, m, n in zip(WORKERS, models, samples):
        chain.tx(w, SubmitResult(job_id, m, n, {}))


def attest(chain, job_id, model, verdicts):
    """`verdicts`: one (accuracy, accept) per assigned evaluator, in `evaluator_names` order."""
    for name, (accuracy, accept) in zip(evaluator_names(chain, job_id), verdicts):
        chain.tx(name, Attest(job_id, model, accuracy, accept))


def balances(chain, names):
    return {n: chain.balance(n) for n in names}


def test_competitive_best_accepted_model_wins_and_only_its_worker_is_paid(chain):
    job_id = post_competitive(chain)
    submit_all(chain, job_id)
    job = chain.state.get_job(job_id)
    assert job.mode == "competitive" and job.status == "evaluating" and job.locked_stake() == 60
    e1, e2 = evaluator_names(chain, job_id)
    before = balances(chain, (*WORKERS, e1, e2, "bob"))
    treasury = chain.state.treasury
    attest(chain, job_id, M1, [(8000, True), (8050, True)])
    attest(chain, job_id, M2, [(9000, True), (9040, True)])  # the best agreed accuracy: 9000
    assert chain.state.get_job(job_id).status == "evaluating"  # M3 not attested yet
    attest(chain, job_id, M3, [(1000, False), (1200, False)])  # rejected by both: its worker is slashed
    job = chain.state.get_job(job_id)
    assert job.status == "completed" and job.escrow == 0 and job.locked_stake() == 0
    assert compute_competitive_winner(job) == M2.to_bytes()
    gains = {n: chain.balance(n) - before[n] for n in (*WORKERS, e1, e2, "bob")}
    assert gains == {"worker1": 20, "worker2": 900 + 20, "worker3": 0, e1: 25 - 3, e2: 25 - 3, "bob": 0}
    assert chain.state.treasury - treasury == 50 + 20  # the treasury share and worker3's stake
    assert chain.state.get_worker(chain.addr("worker2")).reputation == 1
    w3 = chain.state.get_worker(chain.addr("worker3"))
    assert (w3.slash_count, w3.slashed_total) == (1, 20)
    view = view_job(job_id, job)
    assert view["mode"] == "competitive" and view["winner"] == str(M2)
    assert view["verdicts"][str(M3)][str(chain.addr(e1))] == {"accuracy_bps": 1000, "accept": False}


def test_competitive_tie_goes_to_the_lowest_cid(chain):
    job_id = post_competitive(chain, workers=2)
    submit_all(chain, job_id, models=(M1, M2))
    attest(chain, job_id, M1, [(9000, True), (9000, True)])
    attest(chain, job_id, M2, [(9000, True), (9000, True)])
    low = min(M1.to_bytes(), M2.to_bytes())
    job = chain.state.get_job(job_id)
    assert job.status == "completed" and compute_competitive_winner(job) == low
    winner = next(a for a, (cid, _) in job.results.items() if cid == low)
    assert {w: chain.state.get_worker(chain.addr(w)).reputation for w in WORKERS[:2]} == \
        {w: int(chain.addr(w).raw == winner) for w in WORKERS[:2]}


def test_competitive_disagreeing_evaluators_do_not_make_a_winner(chain):
    job_id = post_competitive(chain, workers=2)
    submit_all(chain, job_id, models=(M1, M2))
    attest(chain, job_id, M1, [(9900, True), (9000, True)])  # 9 points apart, threshold 1 point
    attest(chain, job_id, M2, [(8000, True), (8010, True)])
    job = chain.state.get_job(job_id)
    assert job.status == "completed" and compute_competitive_winner(job) == M2.to_bytes()


def test_competitive_all_models_rejected_fails_refunds_and_slashes(chain):
    job_id = post_competitive(chain, workers=2)
    bob = chain.balance("bob")
    submit_all(chain, job_id, models=(M1, M2))
    treasury = chain.state.treasury
    attest(chain, job_id, M1, [(100, False), (200, False)])
    attest(chain, job_id, M2, [(300, False), (300, False)])
    job = chain.state.get_job(job_id)
    assert job.status == "failed" and job.escrow == 0 and job.locked_stake() == 0
    assert chain.balance("bob") == bob + 1000
    assert chain.state.treasury - treasury == 40


def test_competitive_mixed_verdicts_wait_for_the_deadline_then_refund(chain):
    job_id = post_competitive(chain, workers=2, deadline=8)
    submit_all(chain, job_id, models=(M1, M2))
    attest(chain, job_id, M1, [(9000, True), (4000, False)])  # split: no winner, not rejected
    attest(chain, job_id, M2, [(100, False), (100, False)])
    assert chain.state.get_job(job_id).status == "evaluating"
    bob, w1, w2 = chain.balance("bob"), chain.balance("worker1"), chain.balance("worker2")
    chain.advance(8)
    job = chain.state.get_job(job_id)
    assert job.status == "expired" and job.escrow == 0
    assert chain.balance("bob") == bob + 1000
    assert (chain.balance("worker1") - w1, chain.balance("worker2") - w2) == (20, 0)  # M2's worker slashed


def test_competitive_silent_worker_cannot_stall_the_winner_is_paid_at_the_deadline(chain):
    job_id = post_competitive(chain, deadline=10)
    for w in WORKERS:
        chain.tx(w, Volunteer(job_id))
    chain.tx("worker1", SubmitResult(job_id, M1, 100, {}))
    assert chain.state.get_job(job_id).status == "training"
    attest(chain, job_id, M1, [(9000, True), (9000, True)])  # attestation opens with the first result
    chain.tx("worker2", SubmitResult(job_id, M2, 100, {}))
    attest(chain, job_id, M2, [(9500, True), (9500, True)])
    assert chain.state.get_job(job_id).status == "training"  # worker3 never submits
    before = balances(chain, WORKERS)
    chain.advance(10)
    job = chain.state.get_job(job_id)
    assert job.status == "completed" and compute_competitive_winner(job) == M2.to_bytes()
    assert {w: chain.balance(w) - before[w] for w in WORKERS} == {"worker1": 20, "worker2": 920, "worker3": 20}


def test_competitive_job_nobody_takes_expires(chain):
    job_id = post_competitive(chain, deadline=3)
    bob = chain.balance("bob")
    chain.advance(3)
    assert chain.state.get_job(job_id).status == "expired" and chain.balance("bob") == bob + 1000


def test_invalid_competitive_attestations(chain):
    job_id = post_competitive(chain, workers=2)
    e1, e2 = evaluator_names(chain, job_id)
    chain.tx("worker1", Volunteer(job_id))
    chain.tx("worker2", Volunteer(job_id))
    chain.reject(e1, Attest(job_id, M1, 9000, True), WrongState)  # assigned: nothing submitted yet
    chain.tx("worker1", SubmitResult(job_id, M1, 10, {}))
    chain.reject(e1, Attest(job_id, M2, 9000, True), UnknownEntity)  # nobody submitted M2 yet
    chain.reject("worker1", Attest(job_id, M1, 9000, True), NotAuthorized)
    chain.tx(e1, Attest(job_id, M1, 9000, True))
    chain.reject(e1, Attest(job_id, M1, 9100, True), DuplicateAction)  # twice for the same model
    chain.tx("worker2", SubmitResult(job_id, M2, 10, {}))
    chain.tx(e1, Attest(job_id, M2, 8000, True))  # the same evaluator, another model: fine
    chain.tx(e2, Attest(job_id, M1, 9000, True))
    chain.tx(e2, Attest(job_id, M2, 8000, True))
    assert chain.state.get_job(job_id).status == "completed"
    chain.reject(e1, Attest(job_id, M2, 8000, True), WrongState)  # after the verdict


def test_invalid_competitive_result_copying_another_workers_model(chain):
    job_id = post_competitive(chain)
    for w in WORKERS:
        chain.tx(w, Volunteer(job_id))
    chain.tx("worker1", SubmitResult(job_id, M1, 10, {}))
    chain.reject("worker2", SubmitResult(job_id, M1, 10, {}), DuplicateAction)
    chain.reject("worker1", SubmitResult(job_id, M2, 10, {}), DuplicateAction)
    chain.reject("worker3", Volunteer(job_id), WrongState)  # full, and training


def test_invalid_post_job_mode(chain):
    post(chain)
    chain.reject("bob", PostJob(SPEC, 1000, 2, 100, 50, 1, 1, 20, mode="gossip"), InvalidJobSpec)


def test_post_job_mode_is_omitted_at_its_default_and_old_encodings_stay_valid():
    from ledger_support import CHAIN_ID, Chain

    chain = Chain()
    body = PostJob(SPEC, 1000, 2, 100, 50, 1, 1, 20)
    raw = encode_tx(chain.keys["bob"], 0, 1, CHAIN_ID, body)
    payload, _ = decode(raw)
    assert "mode" not in decode(payload)["body"]  # byte for byte the encoding from before modes
    assert decode_tx(raw, 10_000).body == body
    competitive = PostJob(SPEC, 1000, 2, 100, 50, 1, 1, 20, mode="competitive")
    raw = encode_tx(chain.keys["bob"], 0, 1, CHAIN_ID, competitive)
    assert decode(decode(raw)[0])["body"]["mode"] == "competitive"
    assert decode_tx(raw, 10_000).body == competitive


def test_invalid_post_job_spelling_out_the_default_mode():
    from ledger_support import CHAIN_ID, Chain

    key = Chain().keys["bob"]
    body = PostJob(SPEC, 1000, 2, 100, 50, 1, 1, 20)
    fields = {"agreement_threshold_bps": 100, "budget": 1000, "deadline_height": 50, "max_workers": 1,
              "min_workers": 1, "mode": "federated", "required_evaluators": 2, "spec_cid": SPEC.to_bytes(),
              "worker_stake": 20}
    payload = encode({"body": fields, "chain": CHAIN_ID, "fee": 1, "kind": body.KIND, "nonce": 0,
                      "sender": key.public_key.raw})
    raw = encode([payload, key.sign("tx", CHAIN_ID, payload)])
    with pytest.raises(MalformedTransaction, match="default"):
        decode_tx(raw, 10_000)
    fields["mode"] = 7
    payload = encode({"body": fields, "chain": CHAIN_ID, "fee": 1, "kind": body.KIND, "nonce": 0,
                      "sender": key.public_key.raw})
    with pytest.raises(MalformedTransaction):
        decode_tx(encode([payload, key.sign("tx", CHAIN_ID, payload)]), 10_000)


def test_federated_job_keeps_its_state_encoding_and_a_competitive_one_round_trips():
    job = Job(Address(bytes(20)), SPEC, 1000, 1000, 2, 100, 50, 1, 1, 20, 0)
    assert len(job.to_value()) == 16
    job.mode = "competitive"
    job.verdicts = {M1.to_bytes(): {bytes(20): (9000, True)}}
    job.checkpoint = (3, M2.to_bytes(), bytes(20))
    again = Job.from_value(decode(encode(job.to_value())))
    assert (again.mode, again.verdicts, again.checkpoint) == (job.mode, job.verdicts, job.checkpoint)


# --- round checkpoints ------------------------------------------------------------------


def test_round_checkpoints_are_recorded_in_increasing_rounds(chain):
    job_id = post(chain)
    for w in WORKERS:
        chain.tx(w, Volunteer(job_id))
    chain.tx("worker1", RecordCheckpoint(job_id, 0, M1))
    chain.tx("worker2", RecordCheckpoint(job_id, 2, M2))  # any assigned worker; rounds may be skipped
    job = chain.state.get_job(job_id)
    assert job.checkpoint == (2, M2.to_bytes(), chain.addr("worker2").raw)
    assert view_job(job_id, job)["checkpoint"] == {"round": 2, "cid": str(M2), "worker": str(chain.addr("worker2"))}
    run_to_evaluation_after_volunteering(chain, job_id)
    chain.tx("worker1", RecordCheckpoint(job_id, 3, M3))  # evaluating: the last workers may still be finishing
    assert chain.state.get_job(job_id).checkpoint[0] == 3


def run_to_evaluation_after_volunteering(chain, job_id):
    chain.tx("worker1", SubmitResult(job_id, MODEL, 10, {}))
    chain.tx("worker2", SubmitResult(job_id, MODEL, 10, {}))
    assert chain.state.get_job(job_id).status == "evaluating"


def test_invalid_round_checkpoints(chain):
    job_id = post(chain)
    missing = b"\x01" * 32
    chain.reject("worker1", RecordCheckpoint(missing, 0, M1), UnknownEntity)
    chain.tx("worker1", Volunteer(job_id))
    chain.reject("worker1", RecordCheckpoint(job_id, 0, M1), WrongState)  # open: not being trained yet
    chain.tx("worker2", Volunteer(job_id))
    chain.tx("worker3", Volunteer(job_id))
    chain.reject("alice", RecordCheckpoint(job_id, 0, M1), NotAuthorized)  # the client is not a worker
    chain.tx("worker1", RecordCheckpoint(job_id, 1, M1))
    chain.reject("worker2", RecordCheckpoint(job_id, 1, M2), WrongState)  # the same round again
    chain.reject("worker2", RecordCheckpoint(job_id, 0, M2), WrongState)  # an earlier round
    for w in WORKERS:
        chain.tx(w, SubmitResult(job_id, MODEL, 10, {}))
    for e in evaluator_names(chain, job_id):
        chain.tx(e, Attest(job_id, MODEL, 9000, True))
    assert chain.state.get_job(job_id).status == "completed"
    chain.reject("worker1", RecordCheckpoint(job_id, 2, M1), WrongState)  # after the verdict
    competitive = post_competitive_after(chain)
    chain.reject("worker1", RecordCheckpoint(competitive, 0, M1), WrongState)  # no shared model


def post_competitive_after(chain):
    body = PostJob(SPEC, 1000, 2, 100, 50, 1, 1, 20, mode="competitive")
    job_id = chain.tx("carol", body).hash
    chain.tx("worker1", Volunteer(job_id))
    return job_id


def test_invalid_record_checkpoint_encoding():
    from ledger_support import CHAIN_ID, Chain

    key = Chain().keys["worker1"]
    for fields in ({"cid": M1.to_bytes(), "job_id": bytes(32), "round": -1},
                   {"cid": b"not a cid", "job_id": bytes(32), "round": 0},
                   {"cid": M1.to_bytes(), "job_id": bytes(31), "round": 0},
                   {"cid": M1.to_bytes(), "job_id": bytes(32)}):
        payload = encode({"body": fields, "chain": CHAIN_ID, "fee": 1, "kind": "record_checkpoint", "nonce": 0,
                          "sender": key.public_key.raw})
        with pytest.raises(MalformedTransaction):
            decode_tx(encode([payload, key.sign("tx", CHAIN_ID, payload)]), 10_000)


# --- the winner rule against a direct reading of it, on random verdicts ------------------

verdict = st.tuples(st.integers(0, 10_000), st.booleans())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(verdict, verdict), min_size=3, max_size=3), st.integers(0, 1000))
def test_competitive_settlement_matches_the_rule_on_random_verdicts(verdicts, threshold):
    from ledger_support import Chain

    chain = Chain()
    job_id = post_competitive(chain, threshold=threshold)
    submit_all(chain, job_id)
    before = balances(chain, WORKERS)
    for model, pair in zip((M1, M2, M3), verdicts):
        attest(chain, job_id, model, list(pair))  # every tx also checks supply and escrow invariants
    # the rule, read directly: all accept, within the threshold; best minimum; tie -> lowest CID
    eligible = [(min(a for a, _ in pair), m.to_bytes()) for m, pair in zip((M1, M2, M3), verdicts)
                if all(ok for _, ok in pair) and max(a for a, _ in pair) - min(a for a, _ in pair) <= threshold]
    winner = max(eligible, key=lambda e: (e[0], [-b for b in e[1]]))[1] if eligible else None
    rejected = {m.to_bytes() for m, pair in zip((M1, M2, M3), verdicts) if not any(ok for _, ok in pair)}
    job = chain.state.get_job(job_id)
    expected_state = "completed" if winner else ("failed" if len(rejected) == 3 else "evaluating")
    assert job.status == expected_state
    if expected_state == "evaluating":
        return  # settles at the deadline
    assert compute_competitive_winner(job) == winner
    for w, m in zip(WORKERS, (M1, M2, M3)):
        pay = 900 if m.to_bytes() == winner else 0
        stake_back = 0 if m.to_bytes() in rejected else 20
        assert chain.balance(w) - before[w] == pay + stake_back
