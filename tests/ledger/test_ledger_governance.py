"""Governance (proposals, stake-weighted votes, enactment) and the challenge registry."""

from bcai.crypto import Cid
from bcai.errors import (
    AlreadyExists, BadTransactionSignature, DuplicateAction, InvalidParameter, NotAuthorized, UnknownEntity,
    WrongState,
)
from bcai.ledger import Bond, ProposeChange, RegisterChallenge, Vote, compute_challenge_metadata_bytes
from bcai.ledger.challenges import compute_challenge_id

WASM = Cid.of(b"\x00asm\x01\x00\x00\x00")
POLICY = {"memory_mb": 512, "timeout_ms": 30_000}


def challenge_body(chain, name="digits-accuracy", signer="alice"):
    sig = chain.keys[signer].sign("challenge", "bcai-test-1", compute_challenge_metadata_bytes(name, WASM, POLICY))
    return RegisterChallenge(name, WASM, POLICY, sig)


def test_param_change_passes_and_is_enacted_at_end_height(chain):
    pid = chain.tx("val1", ProposeChange({"min_fee": 5, "burn_protocol_share": 1}, {})).hash
    chain.tx("val1", Vote(pid, True))
    chain.tx("val2", Vote(pid, True))
    period = chain.state.params.voting_period
    chain.advance(period - 1)
    assert chain.state.params.min_fee == 1
    chain.advance(1)
    assert chain.state.params.min_fee == 5 and chain.state.params.burn_protocol_share is True
    assert chain.state.get_proposal(pid).status == "passed"


def test_half_the_stake_is_not_enough(chain):
    pid = chain.tx("val1", ProposeChange({"min_fee": 5}, {})).hash
    chain.tx("val1", Vote(pid, True))
    chain.tx("val2", Vote(pid, False))
    chain.advance(chain.state.params.voting_period)
    assert chain.state.get_proposal(pid).status == "rejected"
    assert chain.state.params.min_fee == 1


def test_votes_are_weighted_by_stake_at_tally(chain):
    chain.tx("val1", Bond(9000))  # val1: 10000 of 11000
    pid = chain.tx("val2", ProposeChange({"jail_duration": 7}, {})).hash
    chain.tx("val1", Vote(pid, True))
    chain.advance(chain.state.params.voting_period)
    assert chain.state.params.jail_duration == 7


def test_invalid_proposals(chain):
    chain.reject("alice", ProposeChange({"min_fee": 5}, {}), NotAuthorized)
    chain.reject("val1", ProposeChange({"no_such_param": 5}, {}), InvalidParameter)
    chain.reject("val1", ProposeChange({"max_validators": 0}, {}), InvalidParameter)
    chain.reject("val1", ProposeChange({"worker_share_bps": 9_600}, {}), InvalidParameter)
    chain.reject("val1", ProposeChange({}, {}), InvalidParameter)
    chain.reject("val1", ProposeChange({}, {"00" * 32: "active"}), UnknownEntity)


def test_invalid_double_vote(chain):
    pid = chain.tx("val1", ProposeChange({"min_fee": 2}, {})).hash
    chain.tx("val2", Vote(pid, False))
    chain.reject("val2", Vote(pid, True), DuplicateAction)


def test_invalid_vote_unknown_closed_or_without_stake(chain):
    chain.reject("val1", Vote(b"\x01" * 32, True), UnknownEntity)
    pid = chain.tx("val1", ProposeChange({"min_fee": 2}, {})).hash
    chain.reject("alice", Vote(pid, True), NotAuthorized)
    chain.advance(chain.state.params.voting_period)
    chain.reject("val2", Vote(pid, True), WrongState)


def test_challenge_lifecycle_only_through_governance(chain):
    body = challenge_body(chain)
    chain.tx("alice", body)
    cid = compute_challenge_id(body)
    challenge = chain.state.get_challenge(cid)
    assert challenge.status == "proposed" and challenge.owner == chain.keys["alice"].public_key
    chain.keys["alice"].public_key.verify(
        "challenge", "bcai-test-1", compute_challenge_metadata_bytes(challenge.name, WASM, POLICY),
        challenge.metadata_signature,
    )
    pid = chain.tx("val1", ProposeChange({}, {cid.hex(): "active"})).hash
    chain.tx("val1", Vote(pid, True))
    chain.tx("val2", Vote(pid, True))
    chain.advance(chain.state.params.voting_period)
    assert chain.state.get_challenge(cid).status == "active"
    chain.reject("val1", ProposeChange({}, {cid.hex(): "proposed"}), WrongState)
    chain.reject("val1", ProposeChange({}, {cid.hex(): "paused"}), InvalidParameter)


def test_invalid_challenge_registration(chain):
    body = challenge_body(chain, signer="bob")  # signed by someone else than the sender
    chain.reject("alice", body, BadTransactionSignature)
    chain.tx("alice", challenge_body(chain))
    chain.reject("alice", challenge_body(chain), AlreadyExists)


def test_proposal_invalidated_by_an_earlier_one_is_not_enacted(chain):
    body = challenge_body(chain)
    chain.tx("alice", body)
    cid = compute_challenge_id(body).hex()
    retire = chain.tx("val1", ProposeChange({}, {cid: "retired"})).hash
    chain.block()
    activate = chain.tx("val1", ProposeChange({}, {cid: "active"})).hash
    for pid in (retire, activate):
        chain.tx("val1", Vote(pid, True))
        chain.tx("val2", Vote(pid, True))
    chain.advance(chain.state.params.voting_period)
    assert chain.state.get_proposal(retire).status == "passed"
    assert chain.state.get_proposal(activate).status == "invalid"
    assert chain.state.get_challenge(bytes.fromhex(cid)).status == "retired"
