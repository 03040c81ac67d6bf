"""Property tests: random transaction sequences keep supply, balances and escrow accounted."""

from hypothesis import HealthCheck, given, settings, strategies as st

from bcai.crypto import Cid
from bcai.errors import InvalidTransaction
from bcai.ledger import (
    Attest, Bond, Burn, CancelJob, PostJob, RecordCheckpoint, RegisterEvaluator, RegisterWorker, SubmitResult, Transfer, Unbond,
    Volunteer, check_invariants, compute_supply_breakdown, compute_total_supply,
)
from ledger_support import CAPS, Chain

ACTORS = ("alice", "bob", "carol", "worker1", "worker2", "eval1", "eval2", "eval3", "val1")
MODELS = (Cid.of(b"m1"), Cid.of(b"m2"), Cid.of(b"m3"))

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
        return SubmitResult(job, MODELS[pick % 3], amount % 1000, {})
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


from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule  # noqa: E402

WORKERS = ("worker1", "worker2", "worker3")
EVALUATORS = ("eval1", "eval2", "eval3")


class JobLifecycle(RuleBasedStateMachine):
    """Random interleavings of the job lifecycle; supply and escrow are checked after every step."""

    @initialize()
    def setup(self):
        self.chain = Chain()
        for w in WORKERS:
            self.chain.tx(w, RegisterWorker(100, CAPS))
        self.jobs: list[bytes] = []

    def _try(self, name, body):
        try:
            return self.chain.tx(name, body)
        except InvalidTransaction:
            return None

    @rule(budget=st.integers(1, 50_000), workers=st.integers(1, 3), evaluators=st.integers(1, 3),
          threshold=st.integers(0, 1000), duration=st.integers(1, 30), competitive=st.booleans())
    def post(self, budget, workers, evaluators, threshold, duration, competitive):
        live = [j for j in self.jobs if self.chain.state.get_job(j).status not in ("completed", "failed",
                                                                                      "cancelled", "expired")]
        if len(live) >= 2:  # few live jobs, so that the other rules reach deep into their lifecycles
            return
        body = PostJob(Cid.of(budget.to_bytes(4, "big")), budget, evaluators, threshold,
                       self.chain.state.height + duration, workers, workers, 15,
                       mode="competitive" if competitive else "federated")
        tx = self._try("alice", body)
        if tx is not None:
            self.jobs.append(tx.hash)

    @rule(job=st.integers(0, 20), worker=st.sampled_from(WORKERS))
    def volunteer(self, job, worker):
        if self.jobs:
            self._try(worker, Volunteer(self.jobs[-1 - job % len(self.jobs)]))

    def _member(self, job_id, addresses, pick, names):
        """Usually one of the job's own workers/evaluators (to reach deep states), sometimes anyone."""
        members = [n for n in names if self.chain.addr(n).raw in addresses]
        return members[pick % len(members)] if members and pick % 5 else names[pick % len(names)]

    @rule(job=st.integers(0, 20), pick=st.integers(0, 20), model=st.integers(0, 2), samples=st.integers(0, 1000))
    def submit(self, job, pick, model, samples):
        if self.jobs:
            job_id = self.jobs[job % len(self.jobs)]
            worker = self._member(job_id, self.chain.state.get_job(job_id).workers, pick, WORKERS)
            self._try(worker, SubmitResult(job_id, MODELS[model], samples, {}))

    @rule(job=st.integers(0, 20), pick=st.integers(0, 20), model=st.integers(0, 2),
          accuracy=st.integers(9000, 9200), accept=st.booleans())
    def attest(self, job, pick, model, accuracy, accept):
        if self.jobs:
            job_id = self.jobs[job % len(self.jobs)]
            job_record = self.chain.state.get_job(job_id)
            evaluator = self._member(job_id, job_record.evaluators, pick, EVALUATORS)
            submitted = sorted(cid for cid, _ in job_record.results.values())
            cid = Cid.from_bytes(submitted[pick % len(submitted)]) if submitted and pick % 3 else MODELS[model]
            self._try(evaluator, Attest(job_id, cid, accuracy, accept))

    @rule(job=st.integers(0, 20), pick=st.integers(0, 20), round_index=st.integers(0, 3))
    def checkpoint(self, job, pick, round_index):
        if self.jobs:
            job_id = self.jobs[job % len(self.jobs)]
            worker = self._member(job_id, self.chain.state.get_job(job_id).workers, pick, WORKERS)
            self._try(worker, RecordCheckpoint(job_id, round_index, MODELS[pick % 3]))

    @rule(job=st.integers(0, 20), really=st.integers(0, 3))
    def cancel(self, job, really):
        if self.jobs and really == 0:
            self._try("alice", CancelJob(self.jobs[job % len(self.jobs)]))

    @rule()
    def block(self):
        self.chain.block()

    @invariant()
    def accounted(self):
        if hasattr(self, "chain"):
            check_invariants(self.chain.state)


JobLifecycle.TestCase.settings = settings(max_examples=25, stateful_step_count=40, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_job_lifecycle_state_machine = JobLifecycle.TestCase
