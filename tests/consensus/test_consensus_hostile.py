"""Hostile bytes: whatever arrives, `handle` answers with actions and never raises."""

from __future__ import annotations

from consensus_support import CHAIN, KEYS, PREVOTE, Harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bcai.consensus import MessageRejected, Received, encode_message, sign_vote

HARNESS = Harness()
BLOCK = HARNESS.make_block()
WIRE = [
    encode_message(HARNESS.propose(BLOCK)),
    encode_message(sign_vote(KEYS[HARNESS.me - 1], CHAIN, PREVOTE, 1, 0, BLOCK.block_id)),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 1), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=4),
       cut=st.integers(0, 10**6), tail=st.binary(max_size=8))
def test_mutated_wire_bytes_never_raise(which: int, flips: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    data = bytearray(WIRE[which])
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    data = data[: max(1, cut % (len(data) + 1))] + tail
    engine = Harness(me=HARNESS.me).engine
    actions = engine.handle(Received(bytes(data), 2000))
    rejected = [a for a in actions if isinstance(a, MessageRejected)]
    if bytes(data) == WIRE[which]:
        assert not rejected  # the untouched message is fine
    else:
        # any change breaks the encoding, a signature, or a hash the header binds (a proposal's
        # signature covers the header only; the txs, proof and last commit are bound by it) -
        # or moves the message to another height, where it is set aside unused
        assert rejected or (not engine.votes and not engine.proposals), data.hex()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected(data: bytes) -> None:
    engine = HARNESS.engine
    before = engine.rejected_count
    actions = engine.handle(Received(data, 3000))
    assert engine.rejected_count == before + 1
    assert [type(a) for a in actions] == [MessageRejected]


def test_next_height_buffer_takes_only_signed_messages_of_that_heights_set() -> None:
    import dataclasses

    from bcai.consensus import Proposal, sign_proposal
    from bcai.crypto import PrivateKey

    h = Harness(me=HARNESS.me)
    engine = h.engine
    fat = dataclasses.replace(BLOCK, header=dataclasses.replace(BLOCK.header, height=2), proof=b"\0" * (1 << 20))
    # unsigned (or signed by an outsider): refused, not kept
    forged = Proposal(2, 0, -1, fat, KEYS[0].address.raw, b"\0" * 64)
    outsider = PrivateKey.from_label("not-a-validator")
    for message in (forged, sign_vote(outsider, CHAIN, PREVOTE, 2, 0, None), sign_vote(KEYS[1], "other-chain", PREVOTE, 2, 0, None)):
        actions = engine.handle(Received(message, 2000))
        assert [type(a) for a in actions] == [MessageRejected]
    # signed by a validator: kept, but only a few megabyte-sized proposals
    for round_ in range(50):
        engine.handle(Received(sign_proposal(KEYS[0], CHAIN, round_, -1, fat), 2000))
    assert sum(isinstance(m, Proposal) for m in engine._future) == 4
    # an oversized one is refused outright, as at the current height
    huge = dataclasses.replace(fat, proof=b"\0" * (h.params.max_block_bytes + 1))
    actions = engine.handle(Received(sign_proposal(KEYS[0], CHAIN, 60, -1, huge), 2000))
    assert [type(a) for a in actions] == [MessageRejected]
    # a validator's vote for the next height is still kept for it
    vote = sign_vote(KEYS[1], CHAIN, PREVOTE, 2, 0, None)
    assert engine.handle(Received(vote, 2000)) == [] and engine._future[-1] == vote


def test_early_synced_blocks_are_bounded_in_bytes() -> None:
    import dataclasses

    from bcai.consensus import CommitCertificate, SyncBlock

    engine = Harness(me=HARNESS.me).engine
    fat = dataclasses.replace(BLOCK, proof=b"\0" * (1 << 20))
    for i in range(100):  # junk from a sync peer, far ahead: nothing can check it yet
        block = dataclasses.replace(fat, header=dataclasses.replace(fat.header, height=10**6 + i))
        engine.handle(SyncBlock(block, CommitCertificate(block.height, 0, block.block_id, ()), 2000))
    assert sum(b.size for b, _ in engine._sync_buffer.values()) <= 64 << 20  # not all 100 MiB of it
    huge = dataclasses.replace(BLOCK, header=dataclasses.replace(BLOCK.header, height=5),
                               proof=b"\0" * (HARNESS.params.max_block_bytes + 1))
    actions = engine.handle(SyncBlock(huge, CommitCertificate(5, 0, huge.block_id, ()), 2000))
    assert [type(a) for a in actions] == [MessageRejected] and 5 not in engine._sync_buffer


def test_far_future_heights_and_rounds_keep_memory_bounded() -> None:
    """Votes and proposals far ahead (heights, rounds) from real validators: a bounded
    number of them is kept, whatever arrives."""
    from bcai.consensus import sign_proposal
    from bcai.consensus.engine import MAX_PROPOSAL_ROUNDS_AHEAD, MAX_ROUNDS_AHEAD

    h = Harness(me=HARNESS.me)
    engine = h.engine
    for key in h.others():
        for round_ in range(0, 10_000, 7):  # every round the wire format allows, and then some
            for vote_type in (1, 2):
                engine.handle(Received(sign_vote(key, CHAIN, vote_type, 1, round_, None), 2000))
        for height in (3, 4, 10**6):  # beyond the next height: not even verified
            engine.handle(Received(sign_vote(key, CHAIN, PREVOTE, height, 0, None), 2000))
    assert max(r for r, _ in engine.votes) <= engine.round + MAX_ROUNDS_AHEAD
    assert not engine._future
    # proposals: each by its round's proposer, up to 100 rounds ahead (a 4 MiB block each)
    for round_ in range(1, MAX_ROUNDS_AHEAD + 1):
        key = next(k for k in KEYS if k.address.raw == engine.validators.get_proposer(round_).address)
        engine.handle(Received(sign_proposal(key, CHAIN, round_, -1, BLOCK), 2000))
    assert max(engine.proposals) <= engine.round + MAX_PROPOSAL_ROUNDS_AHEAD


def test_invalid_certificate_with_a_repeated_signer_is_refused() -> None:
    """Two of four validators, one of them listed twice, are not more than 2/3 of the power:
    a certificate object (not decoded from bytes, which would refuse it) must not count a
    signer twice, neither for a synced block nor as a block's last commit."""
    import pytest

    from bcai.consensus import PRECOMMIT, CommitCertificate, SyncBlock, check_certificate
    from bcai.errors import InvalidCertificate

    h = Harness(me=HARNESS.me)
    block = h.make_block()
    a, b = h.others()[:2]
    sigs = tuple((k.address.raw, sign_vote(k, CHAIN, PRECOMMIT, 1, 0, block.block_id).signature) for k in (a, a, b))
    forged = CommitCertificate(1, 0, block.block_id, sigs)
    with pytest.raises(InvalidCertificate, match="more than once"):
        check_certificate(forged, 1, block.block_id, h.engine.validators.by_address, CHAIN)
    actions = h.engine.handle(SyncBlock(block, forged, 2000))
    assert h.engine.height == 1 and [type(x) for x in actions] == [MessageRejected]


def _at_height_two() -> Harness:
    from bcai.consensus import PRECOMMIT, TimeoutFired
    from bcai.consensus.events import COMMIT_WAIT

    h = Harness(me=HARNESS.me)
    first = h.make_block()
    h.feed(h.propose(first))
    h.polka(0, first.block_id)
    h.polka(0, first.block_id, PRECOMMIT, count=3)
    h.engine.handle(TimeoutFired(2, 0, COMMIT_WAIT, h.now))
    assert h.engine.height == 2
    return h


def test_invalid_last_commit_with_an_outsider_or_a_repeated_signer_gets_a_nil_prevote() -> None:
    """A proposal signed by its round's proposer whose block carries a bad commit of its
    parent: refused by the engine's own certificate check (the ledger refuses it too)."""
    import dataclasses

    from bcai.consensus import PRECOMMIT, Broadcast, CommitCertificate, Vote, build_block
    from bcai.consensus.blocks import solve_work
    from bcai.crypto import PrivateKey

    outsider = PrivateKey.from_label("not-a-validator")
    for case in ("non-validator", "more than once"):
        h = _at_height_two()
        good = h.engine.tip.last_commit
        if case == "non-validator":
            extra = (outsider.address.raw, sign_vote(outsider, CHAIN, PRECOMMIT, 1, good.round, good.block_id).signature)
            sigs = tuple(sorted(good.signatures + (extra,)))
        else:  # two distinct signers of four, one of them listed twice: not more than 2/3
            sigs = tuple(sorted(good.signatures[:1] + good.signatures[:2]))
        tip = dataclasses.replace(h.engine.tip, last_commit=CommitCertificate(1, good.round, good.block_id, sigs))
        block = build_block(h.params, tip, h.app.get_app_hash(), h.proposer_key(0).address.raw, (), (), h.now,
                            solve_work(h.params, tip))
        actions = h.feed(h.propose(block))
        errors = [str(x.error) for x in actions if isinstance(x, MessageRejected)]
        assert errors and "bad last commit" in errors[0] and case in errors[0], errors
        votes = [x.message for x in actions if isinstance(x, Broadcast) and isinstance(x.message, Vote)]
        assert votes and votes[0].block_id is None


def _evidence(key, height: int, round_: int = 0):  # noqa: ANN001, ANN202
    from bcai.consensus import DuplicateVoteEvidence

    return DuplicateVoteEvidence.of(sign_vote(key, CHAIN, PREVOTE, height, round_, b"\x01" * 32),
                                    sign_vote(key, CHAIN, PREVOTE, height, round_, None))


def _propose_with_evidence(h: Harness, evidence: tuple) -> list:
    from bcai.consensus import build_block
    from bcai.consensus.blocks import solve_work

    tip = h.engine.tip
    block = build_block(h.params, tip, h.app.get_app_hash(), h.proposer_key(0).address.raw, (), evidence, h.now,
                        solve_work(h.params, tip))
    return h.feed(h.propose(block))


def _prevoted_nil_because(actions: list, why: str) -> None:
    from bcai.consensus import Broadcast, Vote

    errors = [str(x.error) for x in actions if isinstance(x, MessageRejected)]
    assert errors and why in errors[0], errors
    votes = [x.message for x in actions if isinstance(x, Broadcast) and isinstance(x.message, Vote)]
    assert votes and votes[0].block_id is None


def test_invalid_replayed_evidence_is_refused_also_after_a_restart() -> None:
    """Evidence of an offence already punished on chain (the same pair, or another pair for
    the same validator and height) is refused: by the engine that saw it committed, and by
    one restarted from the store, which remembers nothing but the ledger state."""
    from bcai.consensus import LedgerApplication, TimeoutFired
    from bcai.consensus.events import COMMIT_WAIT
    from consensus_support import PRECOMMIT, make_app

    h = Harness(me=HARNESS.me, app=make_app((1000, 1000, 1000, 1000)))
    cheat = next(k for k in h.others() if k.address.raw != h.engine.validators.get_proposer(0).address)
    first = _evidence(cheat, 1)
    _propose_with_evidence(h, (first,))
    block = h.engine.proposals[0].block
    h.polka(0, block.block_id)
    h.polka(0, block.block_id, PRECOMMIT, count=3)
    h.engine.handle(TimeoutFired(2, 0, COMMIT_WAIT, h.now))
    assert h.engine.height == 2 and h.app.state.get_validator(cheat.address).bonded == 950
    if h.engine.proposals.get(0) is not None:
        h.engine.proposals.clear()  # we are height 2's proposer: look at another's proposal instead
    restarted = Harness(me=h.me, app=LedgerApplication(h.app.state), tip=h.engine.tip)
    assert not restarted.engine.committed_offences
    for node in (h, restarted):
        for again in (first, _evidence(cheat, 1, round_=3)):
            node.engine.proposals.clear()
            node.engine._validity.clear()
            node.engine.step = 0
            node.engine._own.clear()
            _prevoted_nil_because(_propose_with_evidence(node, (again,)), "already")


def test_invalid_evidence_before_genesis_or_after_the_block() -> None:
    import pytest

    from bcai.consensus import check_evidence
    from bcai.errors import InvalidEvidence

    h = Harness(me=HARNESS.me)
    cheat = h.others()[0]
    members = h.engine._get_validator_map
    with pytest.raises(InvalidEvidence, match="before the first block"):
        check_evidence(_evidence(cheat, 0), h.params, 1, 100, members)
    with pytest.raises(InvalidEvidence, match="after the block's height 1"):
        check_evidence(_evidence(cheat, 2), h.params, 1, 100, members)
    _prevoted_nil_because(_propose_with_evidence(h, (_evidence(cheat, 0),)), "before the first block")
    h = Harness(me=HARNESS.me)
    _prevoted_nil_because(_propose_with_evidence(h, (_evidence(cheat, 5),)), "after the block's height")


def test_junk_far_ahead_cannot_crowd_the_next_blocks_out_of_the_sync_buffer() -> None:
    import dataclasses

    from bcai.consensus import CommitCertificate, SyncBlock
    from bcai.consensus.engine import MAX_SYNC_BUFFER

    engine = Harness(me=HARNESS.me).engine
    for i in range(MAX_SYNC_BUFFER + 10):  # junk from a sync peer, far ahead: fills the buffer
        block = dataclasses.replace(BLOCK, header=dataclasses.replace(BLOCK.header, height=10**6 + i))
        engine.handle(SyncBlock(block, CommitCertificate(block.height, 0, block.block_id, ()), 2000))
    assert len(engine._sync_buffer) == MAX_SYNC_BUFFER
    # a block for the height after ours arrives before ours: kept, the highest junk goes
    soon = dataclasses.replace(BLOCK, header=dataclasses.replace(BLOCK.header, height=2))
    engine.handle(SyncBlock(soon, CommitCertificate(2, 0, soon.block_id, ()), 2000))
    assert 2 in engine._sync_buffer and len(engine._sync_buffer) == MAX_SYNC_BUFFER
