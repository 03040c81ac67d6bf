"""Governance: proposals that change parameters and challenge statuses, stake-weighted votes.

- Only a validator with bonded stake proposes or votes; one vote per validator per proposal.
- A proposal is tallied at `end_height = submitted + voting_period`, in that block's
  end-of-block step, and enacted there if it passes: the yes votes' *current* bonded stake
  (unjailed validators) reaches `gov_pass_threshold_bps` of the total unjailed bonded stake.
  Weights are read at the tally, not at the vote, so stake that unbonds after voting does
  not count.
- The changes are checked when proposed and checked again at enactment (an earlier proposal
  may have changed what is valid); a proposal that no longer applies is marked "invalid".
"""

from __future__ import annotations

from bcai.crypto import Address
from bcai.errors import DuplicateAction, InvalidParameter, NotAuthorized, UnknownEntity, WrongState
from bcai.ledger.challenges import check_challenge_transition, process_challenge_status
from bcai.ledger.params import BPS, compute_params_with
from bcai.ledger.state import Proposal, State
from bcai.ledger.tx import ProposeChange, SignedTx, Vote

TALLY_QUEUE = b"gtally/"


def _require_voting_power(state: State, address: Address) -> None:
    validator = state.get_validator(address)
    if validator is None or validator.bonded == 0 or validator.jailed:
        raise NotAuthorized("only validators with bonded stake (not jailed) propose and vote")


def _check_changes(state: State, param_changes: dict[str, int], challenge_status: dict[str, str]) -> None:
    compute_params_with(state.params, param_changes)
    for challenge_hex, status in challenge_status.items():
        try:
            challenge_id = bytes.fromhex(challenge_hex)
        except ValueError:
            raise InvalidParameter(f"challenge id {challenge_hex!r} is not hex") from None
        check_challenge_transition(state, challenge_id, status)


def process_propose(state: State, tx: SignedTx, body: ProposeChange) -> None:
    # a validator, proposing at least one valid change
    _require_voting_power(state, tx.sender_address)
    if not body.param_changes and not body.challenge_status:
        raise InvalidParameter("a proposal changes at least one thing")
    _check_changes(state, body.param_changes, body.challenge_status)
    end = state.height + state.params.voting_period
    state.set_proposal(
        tx.hash, Proposal(tx.sender_address, body.param_changes, body.challenge_status, state.height, end)
    )
    state.push_queue(TALLY_QUEUE, end, tx.hash)


def process_vote(state: State, tx: SignedTx, body: Vote) -> None:
    proposal = state.get_proposal(body.proposal_id)
    # a known proposal still in its voting period; a validator voting once
    if proposal is None:
        raise UnknownEntity(f"unknown proposal {body.proposal_id.hex()}")
    if proposal.status != "voting" or state.height >= proposal.end_height:
        raise WrongState("voting on this proposal is closed")
    _require_voting_power(state, tx.sender_address)
    if tx.sender_address.raw in proposal.votes:
        raise DuplicateAction("already voted on this proposal")
    proposal.votes[tx.sender_address.raw] = body.approve
    state.set_proposal(body.proposal_id, proposal)


def compute_tally(state: State, proposal: Proposal) -> tuple[int, int]:
    """(yes power, total power), both from current unjailed bonded stake."""
    total = yes = 0
    for address, validator in state.get_all_validators():
        if validator.jailed:
            continue
        total += validator.bonded
        if proposal.votes.get(address.raw) is True:
            yes += validator.bonded
    return yes, total


def process_tallies(state: State, height: int) -> None:
    for proposal_id in state.pop_queue(TALLY_QUEUE, height):
        proposal = state.get_proposal(proposal_id)
        assert proposal is not None
        yes, total = compute_tally(state, proposal)
        if total == 0 or yes * BPS < state.params.gov_pass_threshold_bps * total:
            proposal.status = "rejected"
        else:
            try:
                _check_changes(state, proposal.param_changes, proposal.challenge_status)
            except (InvalidParameter, UnknownEntity, WrongState):
                proposal.status = "invalid"
            else:
                state.set_params(compute_params_with(state.params, proposal.param_changes))
                for challenge_hex, status in sorted(proposal.challenge_status.items()):
                    process_challenge_status(state, bytes.fromhex(challenge_hex), status)
                proposal.status = "passed"
        state.set_proposal(proposal_id, proposal)
