"""Canonical encoding of consensus messages, decoding of hostile bytes, proposer priority,
difficulty."""

from __future__ import annotations

import dataclasses
from typing import Callable

import pytest
from consensus_support import CHAIN, KEYS, PRECOMMIT, PREVOTE, Harness

from bcai.consensus import (
    ChainTip,
    CommitCertificate,
    DuplicateVoteEvidence,
    Validator,
    ValidatorSet,
    compute_expected_target,
    compute_next_target,
    decode_message,
    encode_message,
    sign_vote,
)
from bcai.encoding import decode, encode
from bcai.errors import InvalidMessage


def test_vote_roundtrip_and_signature() -> None:
    vote = sign_vote(KEYS[0], CHAIN, PRECOMMIT, 3, 1, b"\x05" * 32)
    data = encode_message(vote)
    assert decode_message(data) == vote
    vote.verify(KEYS[0].public_key, CHAIN)
    nil = sign_vote(KEYS[0], CHAIN, PREVOTE, 3, 1, None)
    assert decode_message(encode_message(nil)) == nil


def test_proposal_roundtrip_with_evidence_and_last_commit(harness: Harness) -> None:
    block = harness.make_block()
    a = sign_vote(KEYS[1], CHAIN, PREVOTE, 1, 0, b"\x01" * 32)
    b = sign_vote(KEYS[1], CHAIN, PREVOTE, 1, 0, None)
    ev = DuplicateVoteEvidence.of(a, b)
    cert = CommitCertificate(1, 0, b"\x02" * 32, ((KEYS[0].address.raw, bytes(64)),))
    block = dataclasses.replace(block, evidence=(ev,), last_commit=cert)
    proposal = harness.propose(block)
    again = decode_message(encode_message(proposal))
    assert again == proposal and again.block.block_id == block.block_id
    assert ev.vote_a.block_id is None  # canonical order: nil first
    assert DuplicateVoteEvidence.of(b, a) == ev


def test_block_id_covers_every_header_field(harness: Harness) -> None:
    header = harness.make_block().header
    for field in dataclasses.fields(header):
        value = getattr(header, field.name)
        changed = value + 1 if isinstance(value, int) else (value + "x" if isinstance(value, str) else b"\x09" * len(value))
        assert dataclasses.replace(header, **{field.name: changed}).block_id != header.block_id, field.name


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xa0",
        encode(["vote"]),
        encode(["vote", [1, 1, 0, None, b"\x00" * 20]]),
        encode(["vote", [3, 1, 0, None, b"\x00" * 20, b"\x00" * 64]]),  # unknown vote type
        encode(["vote", [1, -1, 0, None, b"\x00" * 20, b"\x00" * 64]]),  # negative height
        encode(["vote", [1, 1, 0, b"\x00" * 31, b"\x00" * 20, b"\x00" * 64]]),  # short block id
        encode(["vote", [1, 1, 0, None, b"\x00" * 19, b"\x00" * 64]]),  # short address
        encode(["vote", [1, 1, 0, None, b"\x00" * 20, b"\x00" * 63]]),  # short signature
        encode(["vote", [True, 1, 0, None, b"\x00" * 20, b"\x00" * 64]]),  # bool is not a vote type
        encode(["proposal", [1, 0, 0, [], b"\x00" * 20, b"\x00" * 64]]),  # pol_round not below round
        encode(["block", []]),
        b"\x19\x00\x01",  # non-canonical integer encoding
    ],
)
def test_invalid_decode_raises_invalid_message(data: bytes) -> None:
    with pytest.raises(InvalidMessage):
        decode_message(data)


def test_invalid_decode_oversized() -> None:
    vote = sign_vote(KEYS[0], CHAIN, PREVOTE, 3, 1, None)
    with pytest.raises(InvalidMessage):
        decode_message(encode_message(vote), max_bytes=10)


def test_invalid_certificate_unsorted_signers() -> None:
    a, b = sorted(k.address.raw for k in KEYS[:2])
    good = CommitCertificate(1, 0, b"\x02" * 32, ((a, bytes(64)), (b, bytes(64))))
    assert CommitCertificate.from_list(decode(encode(good.to_list()))) == good
    bad = [1, 0, b"\x02" * 32, [[b, bytes(64)], [a, bytes(64)]]]
    with pytest.raises(InvalidMessage):
        CommitCertificate.from_list(bad)


def test_invalid_evidence_shape() -> None:
    a = sign_vote(KEYS[1], CHAIN, PREVOTE, 1, 0, b"\x01" * 32)
    for other in (
        sign_vote(KEYS[2], CHAIN, PREVOTE, 1, 0, None),  # another validator
        sign_vote(KEYS[1], CHAIN, PRECOMMIT, 1, 0, None),  # another type
        sign_vote(KEYS[1], CHAIN, PREVOTE, 1, 1, None),  # another round
        a,  # the same block
    ):
        with pytest.raises(InvalidMessage):
            DuplicateVoteEvidence.of(a, other).check_shape()


def _set(*powers: int) -> ValidatorSet:
    return ValidatorSet([Validator(k.public_key, p) for k, p in zip(KEYS, powers)])


def test_proposer_priority_is_weighted_round_robin() -> None:
    vs = _set(1, 2, 3, 4)
    counts: dict[bytes, int] = {}
    for r in range(1000):
        a = vs.get_proposer(r).address
        counts[a] = counts.get(a, 0) + 1
    by_power = {v.address: v.power for v in vs.validators}
    for address, n in counts.items():
        assert n == 100 * by_power[address]  # exactly proportional over a full cycle multiple


def test_proposer_rotates_with_equal_power_and_carries_over_heights() -> None:
    vs = _set(5, 5, 5, 5)
    first_four = [vs.get_proposer(r).address for r in range(4)]
    assert len(set(first_four)) == 4
    nxt = ValidatorSet.from_priorities(list(vs.validators), vs.compute_priorities_after(0))
    assert nxt.get_proposer(0).address == first_four[1]  # height h+1 round 0 continues the rotation


def test_joining_validator_starts_behind() -> None:
    vs = _set(10, 10, 10)
    joined = [*vs.validators, Validator(KEYS[3].public_key, 10)]
    nxt = ValidatorSet.from_priorities(joined, vs.compute_priorities_after(0))
    assert nxt.priorities[KEYS[3].address.raw] == min(nxt.priorities.values())
    assert sum(nxt.priorities.values()) in range(-len(joined), len(joined))  # re-centred


def test_invalid_validator_sets() -> None:
    with pytest.raises(ValueError):
        ValidatorSet([])
    with pytest.raises(ValueError):
        ValidatorSet([Validator(KEYS[0].public_key, 0)])
    with pytest.raises(ValueError):
        ValidatorSet([Validator(KEYS[0].public_key, 1), Validator(KEYS[0].public_key, 2)])


def test_quorum_thresholds() -> None:
    vs = _set(1, 1, 1, 1)
    assert not vs.is_quorum(2) and vs.is_quorum(3)
    assert not vs.is_one_third(1) and vs.is_one_third(2)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [(5000, 1_000_000), (10_000, 1_050_000), (1, 950_000), (5100, 1_020_000), (4900, 980_000), (0, 950_000)],
)
def test_difficulty_moves_at_most_five_percent(interval: int, expected: int) -> None:
    assert compute_next_target(1_000_000, interval, 5000) == expected


@pytest.mark.parametrize("genesis_gap_ms", [10**8, 1, -5000])  # started a day late, at once, before genesis time
def test_first_adjustment_ignores_the_genesis_gap(genesis_gap_ms: int) -> None:
    # block 2's target used to react to block 1's interval, the gap since the genesis time:
    # a chain started a day after its genesis began 5% easier, one started early 5% harder
    from consensus_support import make_params

    params = make_params(genesis_target=2**40, target_block_ms=5000)
    after_block_1 = ChainTip(1, b"\x01" * 32, genesis_gap_ms, 2**40, genesis_gap_ms, (), None)
    assert compute_expected_target(params, after_block_1) == 2**40
    after_block_2 = dataclasses.replace(after_block_1, height=2, interval_ms=10_000)  # block 2 took twice too long
    assert compute_expected_target(params, after_block_2) == 2**40 * 105 // 100


def test_invalid_difficulty_parameters() -> None:
    with pytest.raises(ValueError):
        compute_next_target(1000, 10, 0)
    with pytest.raises(ValueError):
        compute_next_target(1000, 10, 100, max_change_ppm=1_000_000)
    assert compute_next_target(20, 1, 5000) == 20  # never below the minimum (a 5% step of it is 1)
    with pytest.raises(ValueError):
        compute_next_target(19, 10_000, 5000)  # below it, no 5% step could ever grow the target
    assert compute_next_target(2**64 - 1, 10**9, 5000) == 2**64 - 1  # never exceeds the maximum


def _step_bounds_hold(before: int, after: int) -> bool:
    """`after` is at most 5% away from `before` (down: the 5% step rounded down, so 1 more)."""
    return before * 950_000 // 1_000_000 <= after <= before * 1_050_000 // 1_000_000


def _run_chain(target: int, blocks: int, block_ms: int, interval_of: Callable[[int], int]) -> tuple[list[int], list[int]]:
    """Targets and intervals of a chain whose block interval is `interval_of(work target)`.
    As on the real chain, a block's work shows in its child's timestamp: the interval that
    sets block h+1's target is that of block h, whose time was stamped before h's work, so
    it measures the work of block h-1 (one block of lag)."""
    targets, intervals = [target, target], []
    for _ in range(blocks):
        intervals.append(interval_of(targets[-2]))
        nxt = compute_next_target(targets[-1], intervals[-1], block_ms)
        assert _step_bounds_hold(targets[-1], nxt), (targets[-1], nxt)
        targets.append(nxt)
    return targets, intervals


@pytest.mark.parametrize("start_difficulty", [2, 10_000_000])  # far too easy, far too hard
def test_difficulty_converges_to_the_target_block_time_from_both_sides(start_difficulty: int) -> None:
    block_ms, overhead_ms, tries_per_ms = 300, 100, 50  # consensus takes 100 ms the work cannot shorten

    def interval_of(target: int) -> int:  # expected tries = 2^64 / target
        return overhead_ms + (2**64 // target) // tries_per_ms

    targets, intervals = _run_chain(2**64 // start_difficulty, 600, block_ms, interval_of)
    assert all(abs(i - block_ms) <= block_ms // 20 for i in intervals[-100:]), intervals[-100:]
    equilibrium = (block_ms - overhead_ms) * tries_per_ms  # 10,000 tries per block
    assert abs(2**64 // targets[-1] - equilibrium) <= equilibrium // 10


def test_difficulty_is_never_stuck_at_the_bottom() -> None:
    """Blocks far too fast drive the target down to its minimum; when they turn slow it must
    grow again by 5% a block (a 5% step of a target under 20 used to round to nothing, so
    the target stayed at 1: the hardest difficulty, for ever)."""
    targets, _ = _run_chain(2**64 // 1000, 1000, 5000, lambda target: 0)
    assert targets[-1] == 20
    targets, _ = _run_chain(targets[-1], 200, 5000, lambda target: 50_000)
    assert all(b > a for a, b in zip(targets[1:], targets[2:]))
    assert targets[-1] >= 20 * 1.04**200  # whole 5% steps, less what rounding down takes at the bottom


@pytest.mark.parametrize("changes", [
    {"genesis_target": 19}, {"genesis_target": 0}, {"genesis_target": 2**64}, {"target_block_ms": 0},
    {"max_target_change_ppm": 1_000_000}, {"max_target_change_ppm": -1},
])
def test_invalid_consensus_params_are_refused(changes: dict[str, int]) -> None:
    from bcai.consensus import ConsensusParams
    from bcai.errors import ConfigError, InvalidConsensusParams

    with pytest.raises(InvalidConsensusParams) as info:
        ConsensusParams(**changes)  # type: ignore[arg-type]
    assert isinstance(info.value, ConfigError) and info.value.code == "consensus_params_invalid"


def test_invalid_genesis_target_in_a_chain_spec_is_a_config_error() -> None:
    from bcai.errors import ConfigError
    from bcai.node.chainspec import parse_consensus_params

    with pytest.raises(ConfigError, match="genesis_target"):
        parse_consensus_params("bcai-x", {"genesis_target": 10})
