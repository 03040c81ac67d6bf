"""`bcai genesis`: write and check genesis files (format in docs/genesis.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bcai.cli.files import write_file
from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError, InvalidGenesis
from bcai.ledger import compute_genesis_state, compute_validator_set, load_genesis, parse_genesis

app = typer.Typer(help="Write and check genesis files.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print one JSON object.")


def _pairs(items: list[str], what: str) -> list[tuple[str, int]]:
    pairs = []
    for item in items:
        name, sep, amount = item.rpartition("=")
        if not sep or not amount.isdigit():
            raise InvalidGenesis(f"{what} {item!r}: expected NAME=AMOUNT")
        pairs.append((name, int(amount)))
    return pairs


@app.command("new")
def new(
    out: Path = typer.Argument(..., help="Where to write the genesis JSON."),
    chain_id: str = typer.Option(..., "--chain-id", help="The chain id, e.g. bcai-devnet-1."),
    account: list[str] = typer.Option([], "--account", help="ADDRESS=BALANCE (repeatable)."),
    validator: list[str] = typer.Option([], "--validator", help="PUBLIC_KEY_HEX=STAKE (repeatable)."),
    evaluator: list[str] = typer.Option([], "--evaluator", help="ADDRESS=STAKE (repeatable)."),
    as_json: bool = JsonOption,
) -> None:
    """Write a checked genesis file.

    Example: bcai genesis new genesis.json --chain-id bcai-devnet-1 --account bcai...=1000000 --validator <hex>=1000
    """
    try:
        doc = {
            "chain_id": chain_id,
            "accounts": [{"address": a, "balance": b} for a, b in _pairs(account, "--account")],
            "validators": [{"public_key": k, "stake": s} for k, s in _pairs(validator, "--validator")],
            "evaluators": [{"address": a, "stake": s} for a, s in _pairs(evaluator, "--evaluator")],
        }
        genesis = parse_genesis(doc)
        if out.exists():
            raise InvalidGenesis(f"{out} already exists; not overwriting it")
        write_file(out, (json.dumps(genesis.to_dict(), indent=2) + "\n").encode(), overwrite=False)
    except BcaiError as exc:
        fail(exc, as_json)
    root = compute_genesis_state(genesis).root().hex()
    if as_json:
        emit_json({"status": "ok", "path": str(out), "chain_id": chain_id, "state_root": root})
    else:
        console.print(f"wrote {out} (chain {chain_id}, state root {root})")


@app.command("check")
def check(path: Path = typer.Argument(..., help="A genesis .json or .toml file."), as_json: bool = JsonOption) -> None:
    """Check a genesis file and print its chain id, supply, validators and state root.

    Example: bcai genesis check genesis.json
    """
    try:
        state = compute_genesis_state(load_genesis(path))
    except BcaiError as exc:
        fail(exc, as_json)
    validators = [{"address": str(v.address), "power": v.power} for v in compute_validator_set(state)]
    summary = {"status": "ok", "chain_id": state.chain_id, "supply": state.supply,
               "validators": validators, "state_root": state.root().hex()}
    if as_json:
        emit_json(summary)
    else:
        console.print(f"chain {state.chain_id}: supply {state.supply}, {len(validators)} validators, "
                      f"state root {summary['state_root']}")
