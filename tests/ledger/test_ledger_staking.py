"""Staking, the validator set by height, blocks, slashing (equivocation, downtime), unjail."""

import cbor2
import pytest

from bcai.ledger.slashing import get_evidence_height

from bcai.errors import InsufficientFunds, InsufficientStake, InvalidAmount, InvalidBlock, UnknownEntity, WrongState
from bcai.ledger import (
    Bond, LedgerBlock, Misbehaviour, Transfer, Unbond, Unjail, compute_supply_breakdown, compute_total_supply,
    get_validator_set,
)


def powers(chain, height):
    return [(v.address, v.power) for v in get_validator_set(chain.state, height)]


def test_genesis_validator_set(chain):
    vs = get_validator_set(chain.state, 1)
    assert [v.power for v in vs] == [1000, 1000]
    assert [v.address.raw for v in vs] == sorted(v.address.raw for v in vs)  # ties by address
    assert vs[0].public_key.address == vs[0].address


def test_bond_creates_validator_effective_two_heights_later(chain):
    chain.tx("alice", Bond(5000))
    assert chain.balance("alice") == 1_000_000 - 5001
    chain.block()  # height 1: the change is recorded for height 3
    assert len(get_validator_set(chain.state, 2)) == 2
    assert powers(chain, 3)[0] == (chain.addr("alice"), 5000)
    chain.reject_block(chain.make_block(proposer="alice"))  # height 2: not yet in the set
    chain.block()
    chain.block(proposer="alice")  # height 3: alice may propose now


def test_unbond_releases_at_maturity():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(block_reward=0))
    chain.tx("alice", Bond(5000))
    chain.tx("alice", Unbond(2000))
    period = chain.state.params.unbonding_period
    balance = chain.balance("alice")
    chain.advance(period - 1)
    assert chain.balance("alice") == balance
    assert compute_supply_breakdown(chain.state)["unbonding"] == 2000
    chain.advance(1)
    assert chain.balance("alice") == balance + 2000
    assert compute_supply_breakdown(chain.state)["unbonding"] == 0
    assert chain.state.get_validator(chain.addr("alice")).bonded == 3000


def test_unbond_everything_removes_validator(chain):
    chain.tx("val2", Unbond(1000))
    assert chain.state.get_validator(chain.addr("val2")) is None
    chain.block()
    assert [a for a, _ in powers(chain, 3)] == [chain.addr("val1")]
    assert len(powers(chain, 2)) == 2


def test_invalid_unbond_more_than_bonded(chain):
    chain.reject("val1", Unbond(1001), InsufficientStake)


def test_invalid_unbond_without_stake(chain):
    chain.reject("alice", Unbond(1), UnknownEntity)


def test_invalid_bond_zero_or_unfunded(chain):
    chain.reject("alice", Bond(0), InvalidAmount)
    chain.reject("alice", Bond(1_000_000), InsufficientFunds)


def test_invalid_unjail_when_not_jailed(chain):
    chain.reject("val1", Unjail(), WrongState)
    chain.reject("alice", Unjail(), UnknownEntity)


def test_equivocation_slashes_five_percent_and_jails(chain):
    chain.block()
    supply = chain.state.supply
    treasury = chain.state.treasury
    evidence = Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x11" * 32)
    assert get_evidence_height(chain.state, evidence) is None
    chain.block(misbehaviour=(evidence,))
    assert get_evidence_height(chain.state, evidence) == 2
    v = chain.state.get_validator(chain.addr("val2"))
    assert v.bonded == 950 and v.jailed
    assert chain.state.treasury == treasury + 50
    assert chain.state.supply == supply + chain.state.params.block_reward
    assert [a for a, _ in powers(chain, 4)] == [chain.addr("val1")]
    # the same offence cannot be punished twice, even with other evidence bytes
    again = Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x22" * 32)
    chain.reject_block(chain.make_block(misbehaviour=(again,)))
    # unjail only after the jail duration
    chain.reject("val2", Unjail(), WrongState)
    chain.advance(chain.state.params.jail_duration, signers=("val1",))
    chain.tx("val2", Unjail())
    chain.block(signers=("val1",))
    assert chain.addr("val2") in [a for a, _ in powers(chain, chain.state.height + 2)]


def test_equivocation_burns_when_switch_is_on():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(burn_protocol_share=True))
    chain.block()
    supply = chain.state.supply
    chain.block(misbehaviour=(Misbehaviour(chain.addr("val1"), 1, "equivocation", b"\x01" * 32),))
    assert chain.state.supply == supply + chain.state.params.block_reward - 50
    assert chain.state.treasury == 0


def test_invalid_block_evidence_for_future_or_unknown(chain):
    chain.block()
    chain.reject_block(chain.make_block(misbehaviour=(Misbehaviour(chain.addr("val1"), 9, "equivocation", b""),)))
    chain.reject_block(chain.make_block(misbehaviour=(Misbehaviour(chain.addr("alice"), 1, "equivocation", b""),)))
    chain.reject_block(chain.make_block(misbehaviour=(Misbehaviour(chain.addr("val1"), 1, "lying", b""),)))


def test_downtime_jails_after_missing_more_than_half(chain):
    params = chain.state.params
    chain.block()
    # val2 misses every commit from height 1 on; jailed at its 51st miss
    for _ in range(params.downtime_max_missed):
        chain.block(signers=("val1",))
        assert not chain.state.get_validator(chain.addr("val2")).jailed
    chain.block(signers=("val1",))
    v = chain.state.get_validator(chain.addr("val2"))
    assert v.jailed and v.bonded == 990
    assert chain.state.get_validator(chain.addr("val1")).missed_count == 0


def test_downtime_window_forgets_old_misses(chain):
    chain.block()
    for _ in range(40):
        chain.block(signers=("val1",))
    chain.advance(100)
    assert chain.state.get_validator(chain.addr("val2")).missed_count == 0
    for _ in range(40):
        chain.block(signers=("val1",))
    assert not chain.state.get_validator(chain.addr("val2")).jailed


def test_invalid_block_wrong_height_or_proposer(chain):
    chain.reject_block(LedgerBlock(5, chain.addr("val1")))
    chain.reject_block(LedgerBlock(1, chain.addr("alice")))


def test_invalid_block_signer_outside_set(chain):
    chain.block()
    chain.reject_block(chain.make_block(signers=("val1", "alice")))
    chain.reject_block(chain.make_block(signers=("val1", "val1")))


def test_invalid_block_with_invalid_tx_is_rolled_back(chain):
    good = chain.sign("alice", Transfer(chain.addr("bob"), 5))
    bad = chain.sign("carol", Transfer(chain.addr("bob"), 10**9))
    err = chain.reject_block(chain.make_block(txs=(good, bad)))
    assert "insufficient_funds" in str(err)
    chain.block(txs=(good,))
    assert chain.balance("bob") == 1_000_005


def test_block_with_transactions_and_reward(chain):
    supply = chain.state.supply
    txs = tuple(chain.sign("alice", Transfer(chain.addr("bob"), 1), nonce=i) for i in range(5))
    chain.block(txs=txs)
    assert chain.nonce("alice") == 5
    assert chain.state.supply == supply + chain.state.params.block_reward == compute_total_supply(chain.state)


@pytest.mark.parametrize("signers", [("val1", "val2"), ("val1",)])
def test_state_root_changes_with_every_block(chain, signers):
    roots = {chain.state.root()}
    for _ in range(3):
        chain.block(signers=signers) if chain.state.height else chain.block()
        roots.add(chain.state.root())
    assert len(roots) == 4


def test_invalid_validator_set_height_before_genesis(chain):
    with pytest.raises(UnknownEntity):
        get_validator_set(chain.state, 0)


def test_validator_set_respects_max_validators():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(max_validators=2))
    chain.tx("alice", Bond(5000))
    chain.block()
    assert [a for a, _ in powers(chain, 3)] == [chain.addr("alice"), min(chain.addr("val1"), chain.addr("val2"),
                                                                         key=lambda a: a.raw)]


def test_proposer_selects_only_txs_that_apply_in_the_block(chain):
    from bcai.ledger import PostJob, compute_block_txs
    from bcai.crypto import Cid

    good = chain.sign("alice", Transfer(chain.addr("bob"), 5))
    replay = good  # the same tx twice: the second has a stale nonce once the first applies
    broke = chain.sign("carol", Transfer(chain.addr("bob"), 10**9))
    # valid now (height 0), but its deadline is not after the block's height 1
    late = chain.sign("bob", PostJob(Cid.of(b"s"), 100, 1, 0, 1, 1, 1, 20))
    second = chain.sign("alice", Transfer(chain.addr("carol"), 7), nonce=1)
    before = chain.state.dump()
    template = chain.make_block()
    chosen = compute_block_txs(chain.state, template, [good, replay, broke, late, second])
    assert chosen == (good, second)
    assert chain.state.dump() == before
    chain.block(txs=chosen)
    with pytest.raises(InvalidBlock):
        compute_block_txs(chain.state, LedgerBlock(9, chain.addr("val1")), [good])


def test_equivocation_by_a_validator_that_unbonded_everything_slashes_its_unbonding_stake(chain):
    # val2 double-signs at height 2 and unbonds all of its stake in that block: its bonded
    # record is gone, but the unbonding stake is still slashed (5% of its power at height 2)
    chain.block()
    chain.block(txs=(chain.sign("val2", Unbond(1000)),))
    assert chain.state.get_validator(chain.addr("val2")) is None
    treasury = chain.state.treasury
    evidence = Misbehaviour(chain.addr("val2"), 2, "equivocation", b"\x11" * 32)
    chain.block(misbehaviour=(evidence,))
    assert get_evidence_height(chain.state, evidence) == 3  # recorded: the offence counts once
    assert compute_supply_breakdown(chain.state)["unbonding"] == 950
    assert chain.state.treasury == treasury + 50
    jailed = chain.state.get_validator(chain.addr("val2"))
    assert jailed is not None and jailed.bonded == 0 and jailed.jailed  # a later bond stays out of the set
    chain.reject_block(chain.make_block(misbehaviour=(Misbehaviour(chain.addr("val2"), 2, "equivocation", b"\x22" * 32),)))
    balance = chain.balance("val2")
    chain.advance(chain.state.params.unbonding_period, signers=("val1",))
    assert chain.balance("val2") == balance + 950  # what is left of the unbonding matures as usual


def test_equivocation_slashes_unbondings_started_after_it_then_bonded_stake():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(block_reward=0))
    chain.tx("val2", Unbond(400))  # before the offence: not slashable for it
    chain.advance(2)
    assert {v.address: v.power for v in get_validator_set(chain.state, 3)}[chain.addr("val2")] == 600
    chain.block()  # height 3: val2 double-signs here with power 600
    chain.block(txs=(chain.sign("val2", Unbond(200)),))  # height 4: 200 of it leaves after the offence
    treasury = chain.state.treasury
    evidence = Misbehaviour(chain.addr("val2"), 3, "equivocation", b"\x11" * 32)
    chain.block(misbehaviour=(evidence,))
    # due: 5% of 600 = 30; 10 from the 200 unbonding since the offence, 20 from the 400 bonded
    assert chain.state.get_validator(chain.addr("val2")).bonded == 380
    assert compute_supply_breakdown(chain.state)["unbonding"] == 400 + 190
    assert chain.state.treasury == treasury + 30


def test_equivocation_does_not_slash_stake_bonded_after_it():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(block_reward=0))
    chain.block()  # height 1: val2 double-signs with power 1000
    chain.tx("val2", Bond(1000))
    chain.block()
    chain.block(misbehaviour=(Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x11" * 32),))
    assert chain.state.get_validator(chain.addr("val2")).bonded == 2000 - 50


def test_equivocation_slash_is_capped_at_five_percent_of_the_power_at_the_offence():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(block_reward=0))
    chain.block()  # height 1: val2 double-signs with power 1000
    chain.block(txs=(chain.sign("val2", Bond(1000)), chain.sign("val2", Unbond(1500), nonce=chain.nonce("val2") + 1)))
    treasury = chain.state.treasury
    chain.block(misbehaviour=(Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x11" * 32),))
    # 5% of the 1500 unbonding would be 75: only the 50 due (5% of 1000) is taken
    assert compute_supply_breakdown(chain.state)["unbonding"] == 1450
    assert chain.state.get_validator(chain.addr("val2")).bonded == 500
    assert chain.state.treasury == treasury + 50


def _chain_whose_set_changes_every_block(window: int):
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(evidence_max_age=window, unbonding_period=2 * window, block_reward=0))

    def step(**kw):  # alice bonds a little more in every block: a new set at every height
        chain.tx("alice", Bond(100))
        chain.block(**kw)
    return chain, step


def test_validator_set_history_is_kept_for_the_evidence_window():
    window = 10
    chain, step = _chain_whose_set_changes_every_block(window)
    step()  # height 1
    step()  # height 2: val2 double-signs here
    power_then = {v.address: v.power for v in get_validator_set(chain.state, 2)}[chain.addr("val2")]
    while chain.state.height < 2 + window - 2:
        step()
    assert len(get_validator_set(chain.state, 2)) == 2  # still known (alice joins at height 3)
    # the state holds one set per height of the window, not the whole history
    assert len(cbor2.loads(chain.state.kv.get(b"meta/vset_index"))) <= window + 2
    treasury = chain.state.treasury
    evidence = Misbehaviour(chain.addr("val2"), 2, "equivocation", b"\x11" * 32)
    step(misbehaviour=(evidence,))  # at height 2 + window - 1: accepted, and it slashes
    assert chain.state.height == 2 + window - 1
    v = chain.state.get_validator(chain.addr("val2"))
    assert v.jailed and v.bonded == power_then - power_then * 500 // 10_000
    assert chain.state.treasury == treasury + power_then * 500 // 10_000
    step()  # now no block may carry evidence of height 2: its set is pruned
    with pytest.raises(UnknownEntity, match="no longer kept"):
        get_validator_set(chain.state, 2)
    assert len(get_validator_set(chain.state, 3)) == 3


def test_invalid_evidence_older_than_the_window_is_refused():
    window = 10
    chain, step = _chain_whose_set_changes_every_block(window)
    while chain.state.height < 2 + window:
        step()
    evidence = Misbehaviour(chain.addr("val2"), 2, "equivocation", b"\x11" * 32)
    err = chain.reject_block(chain.make_block(misbehaviour=(evidence,)))  # at height 2 + window + 1
    assert "too old" in str(err) and "window is 10 blocks" in str(err)
    assert chain.state.get_validator(chain.addr("val2")).bonded == 1000


def test_invalid_evidence_against_a_later_joiner_after_the_set_changed():
    # alice joins at height 3: evidence naming her at height 2 is invalid, however many set
    # changes later it comes (the set of height 2 used to be pruned, and the evidence accepted)
    chain, step = _chain_whose_set_changes_every_block(10)
    for _ in range(6):
        step()
    err = chain.reject_block(chain.make_block(misbehaviour=(Misbehaviour(chain.addr("alice"), 2, "equivocation", b""),)))
    assert "not a validator at height 2" in str(err)


def test_evidence_window_never_exceeds_the_unbonding_period():
    from bcai.ledger import Params, get_evidence_window

    assert get_evidence_window(Params()) == 100
    assert get_evidence_window(Params(unbonding_period=50)) == 50  # the stake may be gone after that
    assert get_evidence_window(Params(evidence_max_age=7)) == 7


def test_invalid_equivocation_older_than_the_unbonding_period():
    from ledger_support import Chain
    from bcai.ledger import Params

    chain = Chain(Params(unbonding_period=2))
    chain.advance(5)
    evidence = Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x11" * 32)
    err = chain.reject_block(chain.make_block(misbehaviour=(evidence,)))
    assert "too old" in str(err)


def _evidence_records(chain):
    return chain.state.kv.keys_in_table(b"evid/")


def test_punished_offences_are_forgotten_once_they_leave_the_evidence_window():
    # the `evid/` records used to stay for ever: one per offence, the whole chain's history
    from ledger_support import Chain
    from bcai.ledger import Params
    from bcai.ledger.slashing import get_evidence_floor, get_evidence_max_age

    window = 10
    chain = Chain(Params(evidence_max_age=window, unbonding_period=2 * window))
    chain.block()  # height 1: val2 double-signs here
    evidence = Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x11" * 32)
    chain.block(misbehaviour=(evidence,))  # height 2
    assert get_evidence_height(chain.state, evidence) == 2 and len(_evidence_records(chain)) == 1
    chain.advance(window - 1, signers=("val1",))  # height 1 + window: block 2 + window may not name it
    assert chain.state.height == 1 + window and get_evidence_max_age(chain.state) == window
    assert _evidence_records(chain) == [] and get_evidence_height(chain.state, evidence) is None
    assert get_evidence_floor(chain.state) == 2
    err = chain.reject_block(chain.make_block(misbehaviour=(evidence,), signers=("val1",)))
    assert "too old" in str(err)


def test_a_longer_window_does_not_reopen_pruned_offences():
    # governance may lengthen `evidence_max_age`; the pruned offence must not be punished again
    from ledger_support import Chain
    from bcai.ledger import Params, compute_params_with
    from bcai.ledger.slashing import get_evidence_max_age

    window = 10
    chain = Chain(Params(evidence_max_age=window, unbonding_period=10 * window))
    chain.block()
    chain.block(misbehaviour=(Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x11" * 32),))
    chain.advance(window + 3, signers=("val1",))
    assert _evidence_records(chain) == []
    bonded = chain.state.get_validator(chain.addr("val2")).bonded
    chain.state.set_params(compute_params_with(chain.state.params, {"evidence_max_age": 5 * window}))
    # the window now reaches height 1 again, the floor (2, where the record was pruned) does
    # not: the engine (which asks get_evidence_max_age) and the ledger agree
    assert get_evidence_max_age(chain.state) == chain.state.height + 1 - 2 < 5 * window
    again = Misbehaviour(chain.addr("val2"), 1, "equivocation", b"\x22" * 32)
    err = chain.reject_block(chain.make_block(misbehaviour=(again,), signers=("val1",)))
    assert "too old" in str(err) and "pruned" in str(err)
    assert chain.state.get_validator(chain.addr("val2")).bonded == bonded


def test_validator_set_history_is_pruned_when_the_sets_stop_changing():
    # sets were pruned only when a new one was recorded: a chain whose set stopped changing
    # kept every set of the last window of changes for ever
    window = 10
    chain, step = _chain_whose_set_changes_every_block(window)
    for _ in range(5):
        step()
    assert len(cbor2.loads(chain.state.kv.get(b"meta/vset_index"))) >= 5
    chain.advance(window + 3)  # no change any more
    index = cbor2.loads(chain.state.kv.get(b"meta/vset_index"))
    assert len(index) == 1 and len(chain.state.kv.keys_in_table(b"vset/")) == 1
    assert len(get_validator_set(chain.state, chain.state.height - window + 1)) == 3
