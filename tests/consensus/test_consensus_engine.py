"""Engine unit tests in the CometBFT tradition: one engine fed messages by hand."""

from __future__ import annotations

import dataclasses

import pytest

from consensus_support import CHAIN, GENESIS, KEYS, PRECOMMIT, PREVOTE, USER, Harness, make_app, make_params

from bcai.consensus import (
    PRECOMMIT_STEP,
    PROPOSE,
    Broadcast,
    CommitBlock,
    Engine,
    EvidenceFound,
    LedgerApplication,
    MessageRejected,
    PersistWal,
    Proposal,
    Received,
    ScheduleTimeout,
    Start,
    TimeoutFired,
    Vote,
    WalLock,
    encode_message,
    sign_vote,
)
from bcai.consensus.events import COMMIT_WAIT
from bcai.crypto import PrivateKey
from bcai.encoding import encode
from bcai.errors import BlockRejected, InvalidMessage, InvalidProof
from bcai.ledger import Bond, Transfer, compute_genesis_state, encode_tx


def rejected(actions: list) -> list:
    return [a.error for a in actions if isinstance(a, MessageRejected)]


def test_proposer_persists_before_it_sends() -> None:
    h = Harness()
    proposer_index = next(i for i, k in enumerate(KEYS) if k.address.raw == h.engine.validators.get_proposer(0).address)
    p = Harness(me=proposer_index)
    kinds = [(type(a).__name__, type(getattr(a, "entry", getattr(a, "message", None))).__name__) for a in p.actions]
    assert kinds.index(("PersistWal", "Proposal")) < kinds.index(("Broadcast", "Proposal"))
    assert kinds.index(("PersistWal", "Vote")) < kinds.index(("Broadcast", "Vote"))
    assert p.my_votes(vote_type=PREVOTE)[0].block_id == p.engine.proposals[0].block.block_id


def test_happy_path_locks_precommits_and_commits(harness: Harness) -> None:
    block = harness.make_block()
    harness.feed(harness.propose(block))
    assert harness.my_votes(vote_type=PREVOTE)[0].block_id == block.block_id
    acts = harness.polka(0, block.block_id)
    entries = [a.entry for a in acts if isinstance(a, PersistWal)]
    assert isinstance(entries[0], WalLock) and entries[0].block == block  # lock persisted before the precommit
    assert harness.my_votes(acts, PRECOMMIT)[0].block_id == block.block_id
    assert harness.engine.locked_round == 0
    acts = harness.polka(0, block.block_id, PRECOMMIT)
    commits = [a for a in acts if isinstance(a, CommitBlock)]
    assert len(commits) == 1 and commits[0].block == block
    cert = commits[0].certificate
    assert cert.height == 1 and cert.block_id == block.block_id and len(cert.signatures) == 3
    assert harness.engine.height == 2 and harness.app.get_last_height() == 1


def test_timeouts_grow_per_round(harness: Harness) -> None:
    delays = []
    for r in range(3):
        acts = harness.engine.handle(TimeoutFired(1, r, PRECOMMIT_STEP, 5000 * (r + 1)))
        delays += [a.delay_ms for a in acts if isinstance(a, ScheduleTimeout) and a.step == PROPOSE]
    assert delays == [3500, 4000, 4500]  # rounds 1, 2, 3: 3 s + 0.5 s per round


def _lock_on(h: Harness) -> object:
    block = h.make_block()
    h.feed(h.propose(block))
    h.polka(0, block.block_id)
    assert h.engine.locked_block == block
    h.engine.handle(TimeoutFired(1, 0, PRECOMMIT_STEP, h.now))  # round 0 ends without a commit
    assert h.engine.round == 1
    return block


def test_lock_prevotes_nil_for_another_block(harness: Harness) -> None:
    _lock_on(harness)
    other = harness.make_block(time_offset=5, proposer=harness.proposer_key(1))
    harness.feed(harness.propose(other, round_=1))
    assert harness.my_votes(vote_type=PREVOTE)[0].block_id is None


def test_relock_prevotes_locked_block_again(harness: Harness) -> None:
    block = _lock_on(harness)
    harness.feed(harness.propose(block, round_=1, pol_round=0))
    assert harness.my_votes(vote_type=PREVOTE)[0].block_id == block.block_id


def test_unlock_only_on_newer_polka(harness: Harness) -> None:
    _lock_on(harness)
    other = harness.make_block(time_offset=5, proposer=harness.proposer_key(1))
    # a polka for `other` in round 1 we saw only as votes (the proposal reached us late)
    harness.polka(1, other.block_id, count=3)
    harness.engine.handle(TimeoutFired(1, 1, PRECOMMIT_STEP, harness.now))
    assert harness.engine.locked_round == 0 and harness.engine.round == 2
    # round 2 re-proposes `other` with its round-1 polka: newer than our lock, so we unlock
    acts = harness.feed(harness.propose(other, round_=2, pol_round=1))
    assert harness.my_votes(acts, PREVOTE)[0].block_id == other.block_id


def test_stale_polka_does_not_unlock(harness: Harness) -> None:
    block = _lock_on(harness)
    other = harness.make_block(time_offset=5, proposer=harness.proposer_key(1))
    # a proposal claiming a polka at round 0 for another block, without the votes to show it
    harness.feed(harness.propose(other, round_=1, pol_round=0))
    assert harness.my_votes(vote_type=PREVOTE) == []  # waits for the proof; the timeout then prevotes nil
    acts = harness.engine.handle(TimeoutFired(1, 1, PROPOSE, harness.now))
    assert harness.my_votes(acts, PREVOTE)[0].block_id is None
    assert harness.engine.locked_block == block


def test_invalid_bad_proposal_gets_nil_prevote(harness: Harness) -> None:
    block = harness.make_block()
    bad = dataclasses.replace(block, header=dataclasses.replace(block.header, app_hash=b"\x01" * 32))
    acts = harness.feed(harness.propose(bad))
    assert harness.my_votes(acts, PREVOTE)[0].block_id is None
    assert any(isinstance(e, BlockRejected) for e in rejected(acts))


def test_invalid_proposal_with_bad_tx_gets_nil_prevote(harness: Harness) -> None:
    tx = encode_tx(USER, 7, 1, CHAIN, Transfer(to=KEYS[0].address, amount=5))  # wrong nonce
    acts = harness.feed(harness.propose(harness.make_block(txs=(tx,))))
    assert harness.my_votes(acts, PREVOTE)[0].block_id is None
    assert any(isinstance(e, BlockRejected) for e in rejected(acts))


def test_invalid_oversized_proposal_rejected() -> None:
    h = Harness(params=make_params(max_block_bytes=8000))
    big = h.make_block(txs=(b"\x00" * 9000,))
    acts = h.feed(h.propose(big))
    assert any(isinstance(e, InvalidMessage) and "oversized" in str(e) for e in rejected(acts))
    assert h.engine.proposals == {}
    acts = h.feed(encode_message(h.propose(big)))  # as wire bytes: refused by the decoder's size limit
    assert any(isinstance(e, InvalidMessage) for e in rejected(acts))


def _with_header(h: Harness, block, **changes):  # noqa: ANN001, ANN202
    return dataclasses.replace(block, header=dataclasses.replace(block.header, **changes))


def test_invalid_pouw_wrong_result(harness: Harness) -> None:
    from bcai.crypto import sha256
    from bcai.verify import compute_nonce

    block = harness.make_block()
    proof = bytes([block.proof[0] ^ 1]) + block.proof[1:]
    model_hash = sha256(proof)
    nonce = compute_nonce(block.header.prev_hash, block.header.tx_root, model_hash, block.header.target)
    bad = dataclasses.replace(_with_header(harness, block, model_hash=model_hash, nonce=nonce), proof=proof)
    acts = harness.feed(harness.propose(bad))
    assert harness.my_votes(acts, PREVOTE)[0].block_id is None
    assert any(isinstance(e, InvalidProof) and "Freivalds" in str(e) for e in rejected(acts))


def test_invalid_pouw_stale_task(harness: Harness) -> None:
    from bcai.verify import compute_matrix_task_id

    block = harness.make_block()
    stale = compute_matrix_task_id(block.header.prev_hash, 0, harness.params.matrix_n)  # another height's task
    acts = harness.feed(harness.propose(_with_header(harness, block, task_id=stale)))
    assert any(isinstance(e, InvalidProof) and "stale or future" in str(e) for e in rejected(acts))
    assert harness.my_votes(acts, PREVOTE)[0].block_id is None


def test_invalid_pouw_hash_above_target() -> None:
    h = Harness(params=make_params(genesis_target=2**40))  # about 2^24 tries: the nonce will not be found by chance
    tip = h.engine.tip
    from bcai.consensus import build_block
    from bcai.consensus.blocks import solve_work
    from bcai.verify import compute_work_hash, is_below_target

    easy = make_params(genesis_target=2**64 - 1)
    block = build_block(easy, tip, h.app.get_app_hash(), h.proposer_key(0).address.raw, (), (), h.now, solve_work(easy, tip))
    block = _with_header(h, block, target=2**40)
    assert not is_below_target(compute_work_hash(tip.block_id, block.header.tx_root, block.header.model_hash,
                                                 block.header.nonce), 2**40)
    acts = h.feed(h.propose(block))
    assert any(isinstance(e, InvalidProof) and "target" in str(e) for e in rejected(acts))


def test_invalid_block_with_wrong_difficulty(harness: Harness) -> None:
    block = harness.make_block()
    acts = harness.feed(harness.propose(_with_header(harness, block, target=block.header.target - 1)))
    assert any("difficulty" in str(e) for e in rejected(acts))


def test_invalid_messages_are_rejected_and_change_nothing(harness: Harness) -> None:
    stranger = PrivateKey.from_label("not-a-validator")
    cases = [
        b"\xff\x00garbage",
        encode(["vote", [1, 2, 3]]),
        encode(["nonsense", []]),
        dataclasses.replace(harness.vote(KEYS[harness.me - 1], PREVOTE, 0, None), signature=bytes(64)),
        sign_vote(stranger, CHAIN, PREVOTE, 1, 0, None),
        sign_vote(KEYS[harness.me - 1], "other-chain", PREVOTE, 1, 0, None),
    ]
    not_proposer = next(k for k in KEYS if k.address.raw != harness.engine.validators.get_proposer(0).address)
    from bcai.consensus import sign_proposal

    cases.append(sign_proposal(not_proposer, CHAIN, 0, -1, harness.make_block()))
    for message in cases:
        acts = harness.feed(message)
        assert len(rejected(acts)) == 1, message
        assert isinstance(rejected(acts)[0], InvalidMessage)
    assert harness.engine.votes == {} and harness.engine.proposals == {}
    assert harness.engine.rejected_count == len(cases)


def test_signing_the_same_vote_twice_after_restart() -> None:
    h = Harness()
    block = h.make_block()
    h.feed(h.propose(block))
    wal = [a.entry for a in h.actions if isinstance(a, PersistWal)]
    assert [type(e) for e in wal] == [Vote]
    # crash; the restarted engine replays its WAL and is shown a different block for round 0
    again = Engine(h.params, GENESIS, h.app, h.key, None, wal)
    acts = again.handle(Start(h.now))
    resent = [a.message for a in acts if isinstance(a, Broadcast) and isinstance(a.message, Vote)]
    assert resent == wal  # the same signed vote goes out again
    other = h.make_block(time_offset=7)
    acts = again.handle(Received(h.propose(other), h.now + 20))
    for a in acts:
        if isinstance(a, (Broadcast, PersistWal)):
            m = getattr(a, "message", getattr(a, "entry", None))
            if isinstance(m, Vote) and (m.round, m.vote_type) == (0, PREVOTE):
                assert m.block_id == block.block_id  # never a second, different prevote


def test_restart_keeps_the_lock() -> None:
    h = Harness()
    block = h.make_block()
    h.feed(h.propose(block))
    wal = [a.entry for a in h.actions if isinstance(a, PersistWal)]
    wal += [a.entry for a in h.polka(0, block.block_id) if isinstance(a, PersistWal)]
    assert any(isinstance(e, WalLock) for e in wal)
    again = Engine(h.params, GENESIS, h.app, h.key, None, wal)
    again.handle(Start(h.now))
    assert again.locked_block == block and again.locked_round == 0
    assert again.step == PRECOMMIT_STEP


def test_double_signing_becomes_evidence_and_slashing() -> None:
    h = Harness(app=make_app((1000, 1000, 1000, 1000)))
    cheat = h.others()[0]
    a, b = h.make_block(), h.make_block(time_offset=3)
    h.feed(h.vote(cheat, PREVOTE, 0, a.block_id))
    acts = h.feed(h.vote(cheat, PREVOTE, 0, b.block_id))
    found = [x.evidence for x in acts if isinstance(x, EvidenceFound)]
    assert len(found) == 1 and found[0].validator == cheat.address.raw
    acts = h.feed(h.vote(cheat, PREVOTE, 0, None))  # a third vote: the same offence, no new evidence
    assert not [x for x in acts if isinstance(x, EvidenceFound)]
    assert len(h.engine.pending_evidence) == 1
    # the evidence goes into the block this node proposes, and the ledger slashes and jails
    block = h.engine._make_proposal(5).block
    assert block.evidence == (found[0],)
    cert_votes = [h.vote(k, PRECOMMIT, 5, block.block_id) for k in KEYS[:3]]
    from bcai.consensus import CommitCertificate

    cert = CommitCertificate(1, 5, block.block_id, tuple(sorted((v.validator, v.signature) for v in cert_votes)))
    h.app.check_payload(block)
    h.app.apply_block(block, cert)
    jailed = h.app.state.get_validator(cheat.address)
    assert jailed is not None and jailed.jailed and jailed.bonded == 950  # 5% slashed
    assert cheat.address.raw not in {v.address for v in h.app.get_validators(3)}
    assert cheat.address.raw in {v.address for v in h.app.get_validators(2)}  # takes effect at height + 2


def test_validator_set_change_takes_effect_two_heights_later() -> None:
    from bcai.sim import SimConfig, Simulation

    # validator 0 gets funds at genesis and a bond of 300 in every mempool from the start
    sim = Simulation(SimConfig(validators=4, heights=5, seed=11, tx_interval_ms=0))
    key = sim.keys[0]
    sim.ledger_genesis = dataclasses.replace(sim.ledger_genesis, accounts=sim.ledger_genesis.accounts + ((key.address, 10_000),))
    for node in sim.nodes:
        node.app = LedgerApplication(compute_genesis_state(sim.ledger_genesis))
        node.app.add_tx(encode_tx(key, 0, 1, sim.params.chain_id, Bond(amount=300)))
    report = sim.run()
    assert report.ok, report
    app = sim.nodes[1].app
    bonded_at = next(h for h in range(1, 6) if any(key.public_key.raw in tx for tx in sim.nodes[1].store[h][0].txs))
    power = {h: {v.address: v.power for v in app.get_validators(h)}[key.address.raw] for h in range(1, 6)}
    assert power[bonded_at + 1] == 100 and power[bonded_at + 2] == 400
    # the engine counted the new power: the certificate of that height holds it
    store = sim.nodes[1].store
    assert store[bonded_at + 2][1].height == bonded_at + 2


def test_catch_up_with_verified_certificates() -> None:
    from bcai.consensus import SyncBlock
    from bcai.sim import SimConfig, Simulation

    sim = Simulation(SimConfig(validators=4, heights=4, seed=5))
    sim.run()
    store = sim.nodes[0].store
    fresh = sim._make_app()
    engine = Engine(sim.params, sim.genesis, fresh, None)
    engine.handle(Start(0))
    # out of order: a future block is buffered until its parent arrives
    for height in (2, 1, 3, 4):
        block, cert = store[height]
        engine.handle(SyncBlock(block, cert, 100_000))
    assert fresh.get_last_height() == 4
    assert fresh.get_app_hash() == sim.nodes[0].app.get_app_hash()


def test_invalid_catch_up_certificate_is_rejected() -> None:
    from bcai.consensus import CommitCertificate, SyncBlock
    from bcai.sim import SimConfig, Simulation

    sim = Simulation(SimConfig(validators=4, heights=2, seed=6))
    sim.run()
    block, cert = sim.nodes[0].store[1]
    forged = CommitCertificate(cert.height, cert.round, cert.block_id,
                               tuple((a, bytes(64)) for a, _ in cert.signatures))
    too_few = CommitCertificate(cert.height, cert.round, cert.block_id, cert.signatures[:2])
    other_block = CommitCertificate(cert.height, cert.round, b"\x07" * 32, cert.signatures)
    for bad in (forged, too_few, other_block):
        app = sim._make_app()
        engine = Engine(sim.params, sim.genesis, app, None)
        engine.handle(Start(0))
        acts = engine.handle(SyncBlock(block, bad, 100_000))
        assert rejected(acts) and app.get_last_height() == 0


def test_observer_engine_never_signs() -> None:
    app = make_app()
    engine = Engine(make_params(), GENESIS, app, None)
    acts = engine.handle(Start(0))
    acts += engine.handle(TimeoutFired(1, 0, PROPOSE, 3000))
    assert not [a for a in acts if isinstance(a, (PersistWal, Broadcast))]


def test_proposal_round_must_match_proposer(harness: Harness) -> None:
    block = harness.make_block()
    proposal = harness.propose(block)
    assert isinstance(proposal, Proposal)
    # the same proposal re-signed for round 1 by round 0's proposer is not that round's proposal
    if harness.proposer_key(1).address != harness.proposer_key(0).address:
        from bcai.consensus import sign_proposal

        wrong = sign_proposal(harness.proposer_key(0), CHAIN, 1, -1, block)
        assert rejected(harness.feed(wrong))


def test_double_signers_vote_still_counts_for_its_block(harness: Harness) -> None:
    block = harness.make_block()
    harness.feed(harness.propose(block))  # our own prevote for the block
    cheat, honest = harness.others()[0], harness.others()[1]
    harness.feed(harness.vote(cheat, PREVOTE, 0, None))  # the cheat's first vote: nil
    harness.feed(harness.vote(honest, PREVOTE, 0, block.block_id))
    assert harness.engine.locked_round == -1  # two votes for the block so far
    acts = harness.feed(harness.vote(cheat, PREVOTE, 0, block.block_id))  # its conflicting vote for the block
    assert any(isinstance(a, EvidenceFound) for a in acts)
    assert harness.engine.locked_block == block  # the polka another node may have seen is seen here too


def test_reproposal_carries_its_polka() -> None:
    probe = Harness()
    proposer_1 = next(i for i, k in enumerate(KEYS) if k.address.raw == probe.engine.validators.get_proposer(1).address)
    h = Harness(me=proposer_1)
    block = h.make_block()
    h.feed(h.propose(block))
    polka = [h.vote(k, PREVOTE, 0, block.block_id) for k in h.others()[:2]]
    for v in polka:
        h.feed(v)
    assert h.engine.valid_block == block
    acts = h.engine.handle(TimeoutFired(1, 0, PRECOMMIT_STEP, h.now + 5000))
    sent = [a.message for a in acts if isinstance(a, Broadcast)]
    proposal = next(m for m in sent if isinstance(m, Proposal))
    assert proposal.round == 1 and proposal.pol_round == 0 and proposal.block == block
    relayed = {m for m in sent if isinstance(m, Vote) and m.round == 0 and m.vote_type == PREVOTE}
    assert set(polka) <= relayed


def test_engine_pauses_after_a_commit() -> None:
    from bcai.consensus.events import COMMIT_WAIT

    app = make_app((10,))  # a single validator commits alone
    params = make_params(timeout_commit_ms=250)
    engine = Engine(params, GENESIS, app, KEYS[0])
    acts = engine.handle(Start(1000))
    assert [a.block.height for a in acts if isinstance(a, CommitBlock)] == [1]  # one block, then it yields
    waits = [a for a in acts if isinstance(a, ScheduleTimeout) and a.step == COMMIT_WAIT]
    assert [(w.height, w.delay_ms) for w in waits] == [(2, 250)]
    acts = engine.handle(TimeoutFired(2, 0, COMMIT_WAIT, 1250))
    assert [a.block.height for a in acts if isinstance(a, CommitBlock)] == [2]


def test_invalid_evidence_from_a_height_the_app_forgot(harness: Harness) -> None:
    import pytest

    from bcai.consensus import DuplicateVoteEvidence, check_evidence
    from bcai.errors import InvalidEvidence

    class Forgetful:
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(harness.app, name)

        def get_validators(self, height: int):  # noqa: ANN201
            raise KeyError(height)

    harness.engine.app = Forgetful()  # type: ignore[assignment]
    assert harness.engine._get_validator_map(harness.engine.height - 1) == {}  # no exception escapes
    cheat = harness.others()[0]
    ev = DuplicateVoteEvidence.of(sign_vote(cheat, CHAIN, PREVOTE, 1, 0, None),
                                  sign_vote(cheat, CHAIN, PREVOTE, 1, 0, b"\x03" * 32))
    with pytest.raises(InvalidEvidence, match="set of height 1 is not known"):
        check_evidence(ev, harness.params, 2, 100, lambda height: {})


def test_sliced_nonce_search_proposes_the_same_block() -> None:
    """With `nonce_slice`, the proposer searches a few nonces per `handle` call, going on at
    each `SOLVE` timeout, and then proposes the very block an unsliced search builds."""
    from bcai.consensus import Broadcast, Engine, PersistWal, Proposal, ScheduleTimeout, Start, TimeoutFired
    from bcai.consensus.events import SOLVE

    params = make_params(genesis_target=2**64 // 200)  # about 200 tries
    probe = Engine(params, GENESIS, make_app(), None)
    probe.handle(Start(0))
    key = next(k for k in KEYS if k.address.raw == probe.validators.get_proposer(0).address)

    def proposals(actions: list[object]) -> list[Proposal]:
        return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, Proposal)]

    whole = Engine(params, GENESIS, make_app(), key)
    expected = proposals(whole.handle(Start(1000)))[0].block
    sliced = Engine(params, GENESIS, make_app(), key, nonce_slice=3)
    actions = sliced.handle(Start(1000))
    assert not proposals(actions) and not any(isinstance(a, PersistWal) for a in actions)
    assert any(isinstance(a, ScheduleTimeout) and a.step == SOLVE and a.delay_ms == 0 for a in actions)
    assert sliced.handle(TimeoutFired(1, 1, SOLVE, 1001)) == []  # another round's slice: ignored
    calls = 1
    while not (found := proposals(actions := sliced.handle(TimeoutFired(1, 0, SOLVE, 1001)))):
        calls += 1
        assert calls < 10_000
        assert [a.step for a in actions if isinstance(a, ScheduleTimeout)] == [SOLVE]
    assert calls > 1 and found[0].block == expected and found[0].block.header.nonce == expected.header.nonce
    persisted = [i for i, a in enumerate(actions) if isinstance(a, PersistWal)]
    sent = [i for i, a in enumerate(actions) if isinstance(a, Broadcast) and isinstance(a.message, Proposal)]
    assert persisted and persisted[0] < sent[0]  # on disk before it leaves
    assert sliced.proposals[0].block == expected  # and we hold it as this round's proposal


def test_evidence_against_a_validator_that_unbonded_everything_does_not_stall_proposers() -> None:
    from bcai.ledger import Unbond

    h = Harness(app=make_app((1000, 1000, 1000, 1000)))
    cheat = KEYS[0]  # funded at genesis: it pays the fee of unbonding all of its stake at height 1
    assert h.me != 0
    block = h.make_block(txs=(encode_tx(cheat, 0, 1, CHAIN, Unbond(amount=1000)),))
    h.feed(h.propose(block))
    h.polka(0, block.block_id)
    h.polka(0, block.block_id, PRECOMMIT, count=3)
    assert h.engine.height == 2 and h.app.state.get_validator(cheat.address) is None
    h.engine.handle(TimeoutFired(2, 0, COMMIT_WAIT, h.now))  # round 0 of height 2 begins
    # still in the set at height 2, it double-votes there
    h.feed(h.vote(cheat, PREVOTE, 0, h.make_block().block_id))
    h.feed(h.vote(cheat, PREVOTE, 0, h.make_block(time_offset=3).block_id))
    assert len(h.engine.pending_evidence) == 1
    # our next proposal carries it, and the block is valid (it used to be refused for ever)
    proposal = h.engine._make_proposal(5)
    assert len(proposal.block.evidence) == 1
    h.app.check_payload(proposal.block)


def test_proposer_drops_pending_evidence_that_no_longer_checks() -> None:
    h = Harness()
    cheat = h.others()[0]
    h.feed(h.vote(cheat, PREVOTE, 0, b"\x01" * 32))
    h.feed(h.vote(cheat, PREVOTE, 0, None))  # double vote at height 1: pending evidence
    for height in (1, 2):  # two blocks by others, without it
        block = h.make_block(proposer=h.proposer_key(0))
        h.feed(h.propose(block))
        h.polka(0, block.block_id)
        h.polka(0, block.block_id, PRECOMMIT, count=3)
        h.engine.handle(TimeoutFired(height + 1, 0, COMMIT_WAIT, h.now))
    assert h.engine.height == 3 and len(h.engine.pending_evidence) == 1
    app = h.app

    class Forgetful:  # the set of height 1 is no longer known (pruned): nobody can check the evidence
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(app, name)

        def get_validators(self, height: int):  # noqa: ANN201
            if height < 2:
                raise KeyError(height)
            return app.get_validators(height)

    h.engine.app = Forgetful()  # type: ignore[assignment]
    proposal = h.engine._make_proposal(3)
    assert proposal.block.evidence == () and h.engine.pending_evidence == {}
    h.engine._check_block(proposal.block, h.now)  # our own block is valid (it used to be refused)


def test_forged_old_height_vote_sends_no_blocks() -> None:
    from bcai.consensus import SendBlocks

    h = Harness()
    block = h.make_block()
    h.feed(h.propose(block))
    h.polka(0, block.block_id)
    h.polka(0, block.block_id, PRECOMMIT, count=3)
    behind = h.others()[0]
    forged = Vote(PREVOTE, 1, 0, None, behind.address.raw, b"\0" * 64)  # anyone can claim to be it
    actions = h.engine.handle(Received(forged, h.now + 10_000))
    assert [type(a) for a in actions] == [MessageRejected]
    actions = h.engine.handle(Received(h.vote(behind, PREVOTE, 0, None, height=1), h.now + 10_000))
    assert [a.to for a in actions if isinstance(a, SendBlocks)] == [behind.address.raw]  # the real one still does


def _commit_next(h: Harness, txs: tuple[bytes, ...] = (), evidence: tuple = ()) -> None:
    """Commit one block at the harness engine's height (its own proposal if it is the proposer)."""
    from bcai.consensus import build_block
    from bcai.consensus.blocks import solve_work

    own = h.engine.proposals.get(0)
    if own is not None and not txs and not evidence:
        block = own.block
    else:
        assert own is None, "the harness node proposes at this height"
        tip = h.engine.tip
        block = build_block(h.params, tip, h.app.get_app_hash(), h.proposer_key(0).address.raw, txs, evidence,
                            h.now, solve_work(h.params, tip))
        h.feed(h.propose(block))
    h.polka(0, block.block_id)
    h.polka(0, block.block_id, PRECOMMIT, count=3)
    assert h.engine.tip.block_id == block.block_id, rejected(h.actions)
    h.engine.handle(TimeoutFired(h.engine.height, 0, COMMIT_WAIT, h.now))


def test_evidence_window_is_judged_alike_by_a_restarted_node() -> None:
    """Equivocation at height 1, the validator set changing at every height: evidence in the
    block at 1 + window - 1 passes on a node that ran all along and on one restarted from its
    state (no cached sets), the block slashes; at 1 + window + 1 it is refused as too old."""
    from bcai.consensus import DuplicateVoteEvidence, check_evidence
    from bcai.errors import InvalidEvidence

    h = Harness(app=make_app((1000, 1000, 1000, 1000)))
    window = h.app.get_evidence_max_age()
    cheat = next(k for k in h.others() if k != KEYS[0])
    ev = DuplicateVoteEvidence.of(h.vote(cheat, PREVOTE, 0, b"\x01" * 32), h.vote(cheat, PREVOTE, 0, None))
    nonce = 0
    while h.engine.height < 1 + window - 1:
        if h.engine.proposals.get(0) is not None:
            _commit_next(h)
        else:  # validator 0 bonds one more token: a new set at every height
            _commit_next(h, txs=(encode_tx(KEYS[0], nonce, 1, CHAIN, Bond(amount=1)),))
            nonce += 1
    assert nonce > window // 2
    restarted = LedgerApplication(h.app.state)  # a restarted node: its state, nothing remembered
    for app in (h.app, restarted):
        check_evidence(ev, h.params, h.engine.height, app.get_evidence_max_age(),
                       lambda height, app=app: {v.address: v for v in app.get_validators(height)})
    while h.engine.proposals.get(0) is not None:  # we want another validator's block to carry it
        _commit_next(h)
    assert h.engine.height <= 1 + window
    _commit_next(h, evidence=(ev,))
    slashed = h.app.state.get_validator(cheat.address)
    assert slashed is not None and slashed.jailed and slashed.bonded == 950
    while h.engine.height < 1 + window + 1:
        _commit_next(h)
    with pytest.raises(InvalidEvidence, match="too old"):
        check_evidence(ev, h.params, h.engine.height, window, h.engine._get_validator_map)


def test_proposer_picks_txs_after_the_slash_its_evidence_makes() -> None:
    """The evidence a proposer includes slashes before the block's txs run: a mempool tx valid
    before the slash (unbonding all of the stake) but not after is left out, not proposed in a
    block every validator (the proposer too) refuses, round after round."""
    from bcai.ledger import Unbond

    h = Harness(app=make_app((1000, 1000, 1000, 1000)))
    cheat = KEYS[0]  # funded at genesis
    assert h.me != 0
    h.feed(h.vote(cheat, PREVOTE, 0, b"\x01" * 32))
    h.feed(h.vote(cheat, PREVOTE, 0, None))
    assert len(h.engine.pending_evidence) == 1
    unbond_all = encode_tx(cheat, 0, 1, CHAIN, Unbond(amount=1000))
    fine = encode_tx(USER, 0, 1, CHAIN, Transfer(to=cheat.address, amount=5))
    h.app.add_tx(unbond_all)
    h.app.add_tx(fine)
    block = h.engine._make_proposal(5).block
    assert len(block.evidence) == 1 and block.txs == (fine,)
    h.engine._check_block(block, h.now)  # our own block is valid
