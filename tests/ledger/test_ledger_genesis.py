"""Genesis files: loading, validation with clear errors, and the state they produce."""

import json

import pytest

from bcai.crypto import PrivateKey
from bcai.errors import InvalidGenesis
from bcai.ledger import (
    Params, check_invariants, compute_genesis_state, compute_total_supply, get_validator_set, load_genesis,
    parse_genesis,
)

VAL = PrivateKey.from_label("val1")
ALICE = PrivateKey.from_label("alice")


def doc(**changes):
    base = {
        "chain_id": "bcai-devnet-1",
        "params": {"unbonding_period": 50},
        "accounts": [{"address": str(ALICE.address), "balance": 1000}],
        "validators": [{"public_key": VAL.public_key.hex(), "stake": 500}],
        "evaluators": [{"address": str(PrivateKey.from_label("e").address), "stake": 100}],
    }
    base.update(changes)
    return base


def test_load_json_and_toml(tmp_path):
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(doc()))
    genesis = load_genesis(path)
    assert genesis.chain_id == "bcai-devnet-1" and genesis.params.unbonding_period == 50
    toml = tmp_path / "genesis.toml"
    toml.write_text(
        f'chain_id = "bcai-devnet-1"\n[[accounts]]\naddress = "{ALICE.address}"\nbalance = 1000\n'
        f'[[validators]]\npublic_key = "{VAL.public_key.hex()}"\nstake = 500\n'
    )
    assert load_genesis(toml).accounts == genesis.accounts


def test_genesis_state():
    state = compute_genesis_state(parse_genesis(doc()))
    assert state.chain_id == "bcai-devnet-1" and state.height == 0
    assert state.get_balance(ALICE.address) == 1000
    assert state.supply == 1600 == compute_total_supply(state)
    assert [(v.address, v.power) for v in get_validator_set(state, 1)] == [(VAL.address, 500)]
    assert state.params == Params(unbonding_period=50)
    check_invariants(state)
    # the same genesis always gives the same root
    assert compute_genesis_state(parse_genesis(doc())).root() == state.root()
    assert parse_genesis(parse_genesis(doc()).to_dict()) == parse_genesis(doc())


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"chain_id": ""}, "chain_id"),
        ({"chain_id": "has space"}, "chain_id"),
        ({"validators": []}, "at least one validator"),
        ({"accounts": [{"address": "nope", "balance": 1}]}, "accounts[0].address"),
        ({"accounts": [{"address": str(ALICE.address), "balance": -1}]}, "accounts[0].balance"),
        ({"accounts": [{"address": str(ALICE.address), "balance": 1.5}]}, "accounts[0].balance"),
        ({"accounts": [{"address": str(ALICE.address)}]}, "accounts[0]"),
        ({"accounts": [{"address": str(ALICE.address), "balance": 1}] * 2}, "twice"),
        ({"validators": [{"public_key": "zz", "stake": 5}]}, "validators[0].public_key"),
        ({"validators": [{"public_key": VAL.public_key.hex(), "stake": 0}]}, "validators[0].stake"),
        ({"params": {"bogus": 1}}, "params"),
        ({"params": {"min_fee": -1}}, "params"),
        ({"extra": 1}, "unknown genesis fields"),
        ({"accounts": [{"address": str(ALICE.address), "balance": 2**63 - 1}]}, "supply"),
    ],
)
def test_invalid_genesis(changes, fragment):
    with pytest.raises(InvalidGenesis) as info:
        parse_genesis(doc(**changes))
    assert fragment in str(info.value)


def test_invalid_genesis_files(tmp_path):
    with pytest.raises(InvalidGenesis, match="cannot read"):
        load_genesis(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidGenesis, match="not valid JSON"):
        load_genesis(bad)
    with pytest.raises(InvalidGenesis, match="map"):
        parse_genesis([1, 2])
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(InvalidGenesis, match="not UTF-8"):
        load_genesis(bad)
    bad.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidGenesis, match="nested too deeply"):
        load_genesis(bad)
    deep_toml = tmp_path / "deep.toml"
    deep_toml.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidGenesis, match="nested too deeply"):
        load_genesis(deep_toml)


def test_cli_genesis_new_and_check(tmp_path):
    from typer.testing import CliRunner

    from bcai.cli.app import app

    out = tmp_path / "g.json"
    runner = CliRunner()
    result = runner.invoke(app, ["genesis", "new", str(out), "--chain-id", "bcai-cli-1", "--account",
                                 f"{ALICE.address}=1000", "--validator", f"{VAL.public_key.hex()}=500", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    result = runner.invoke(app, ["genesis", "check", str(out), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["supply"] == 1500 and summary["state_root"] == created["state_root"]


def test_invalid_cli_genesis(tmp_path):
    from typer.testing import CliRunner

    from bcai.cli.app import app

    runner = CliRunner()
    result = runner.invoke(app, ["genesis", "new", str(tmp_path / "g.json"), "--chain-id", "x", "--account",
                                 "nonsense", "--json"])
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "genesis_invalid"
    result = runner.invoke(app, ["genesis", "check", str(tmp_path / "missing.json"), "--json"])
    assert result.exit_code == 2 and "cannot read" in json.loads(result.output)["error"]["message"]
