"""Property tests: random transaction sequences keep supply, balances and escrow accounted."""

from hypothesis import HealthCheck, given, settings, strategies as st

from bcai.crypto import Cid
from bcai.errors import InvalidTransaction
from bcai.ledger import (
    Attest, Bond, Burn, CancelJob, PostJob, RegisterEvaluator, RegisterWorker, SubmitResult, Transfer, Unbond,
    Volunteer, check_invariants, compute_supply_breakdown, compute_total_supply,
)
from ledger_support import CAPS, Chain

ACTORS = ("alice", "bob", "carol", "worker1", "worker2", "eval1", "eval2", "eval3", "val1")
MODELS = (Cid.of(b"m1"), Cid.of(b"m2"))

action = st.tuples(
    st.sampled_from(
        ["transfer", "burn", "bond", "unbond", "register_worker", "register_evaluator", "post_job", "volunteer",
         "submit", "attest", "cancel", "block"]
    ),
    st.sampled_from(ACTORS),
    st.sampled_from(ACTORS),
    st.integers(min_value=0, max_value=2_000_000),
    st.integers(min_value=0, max_value=3),
    st.booleans(),
)


def make_body(chain, jobs, kind, actor, other, amount, pick, flag):
    job = jobs[pick % len(jobs)] if jobs else b"\x00" * 32
    if kind == "transfer":
        return Transfer(chain.addr(other), amount)
    if kind == "burn":
        return Burn(amount % 5000)
    if kind == "bond":
        return Bond(amount % 5000)
    if kind == "unbond":
        return Unbond(amount % 2000)
    if kind == "register_worker":
        return RegisterWorker(amount % 500, CAPS)
    if kind == "register_evaluator":
        return RegisterEvaluator(amount % 500)
    if kind == "post_job":
        return PostJob(Cid.of(bytes([pick])), amount % 20_000, 1 + pick % 2, 500, chain.state.height + 1 + pick * 3,
                       1, 1 + pick % 2, 10 + pick)
    if kind == "volunteer":
        return Volunteer(job)
    if kind == "submit":
        return SubmitResult(job, MODELS[pick % 2], amount % 1000, {})
    if kind == "attest":
        return Attest(job, MODELS[pick % 2], 9000 + pick, flag)
    return CancelJob(job)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=1, max_size=30))
def test_random_sequences_conserve_supply(actions):
    chain = Chain()
    jobs: list[bytes] = []
    for kind, actor, other, amount, pick, flag in actions:
        if kind == "block":
            chain.block()
            continue
        body = make_body(chain, jobs, kind, actor, other, amount, pick, flag)
        before, root = chain.state.dump(), chain.state.root()
        try:
            tx = chain.tx(actor, body)  # checks the invariants after the tx
        except InvalidTransaction:
            assert chain.state.dump() == before and chain.state.root() == root
            continue
        if kind == "post_job":
            jobs.append(tx.hash)
    check_invariants(chain.state)
    parts = compute_supply_breakdown(chain.state)
    assert all(value >= 0 for value in parts.values())
    assert compute_total_supply(chain.state) == chain.state.supply
    open_jobs = [job for _, job in chain.state.get_all_jobs() if job.escrow]
    assert parts["escrow"] == sum(job.budget for job in open_jobs)
