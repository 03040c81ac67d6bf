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
