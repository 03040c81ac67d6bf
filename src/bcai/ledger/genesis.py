"""Genesis: the file that defines a chain's first state (format in docs/genesis.md).

    {
      "chain_id": "bcai-devnet-1",
      "params": {"unbonding_period": 50},                       (optional overrides)
      "accounts": [{"address": "bcai<40 hex>", "balance": 1000000}],
      "validators": [{"public_key": "<64 hex>", "stake": 1000}],
      "evaluators": [{"address": "bcai<40 hex>", "stake": 100}]  (optional)
    }

JSON (`.json`) or TOML (`.toml`). Every token at genesis is minted: balances, validator
stakes (bonded, not taken from a balance) and evaluator stakes. `load_genesis` checks every
field and raises `InvalidGenesis` naming the field at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bcai.crypto import Address, PublicKey
from bcai.encoding import encode
from bcai.encoding.documents import load_json, load_toml, read_utf8
from bcai.errors import BcaiError, InvalidGenesis
from bcai.ledger.bank import process_mint
from bcai.ledger.params import MAX_AMOUNT, Params
from bcai.ledger.state import K_CHAIN, K_HEIGHT, Evaluator, State, Validator
from bcai.ledger.staking import process_genesis_validator_set

_CHAIN_ID = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    params: Params = field(default_factory=Params)
    accounts: tuple[tuple[Address, int], ...] = ()
    validators: tuple[tuple[PublicKey, int], ...] = ()
    evaluators: tuple[tuple[Address, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "params": self.params.to_dict(),
            "accounts": [{"address": str(a), "balance": b} for a, b in self.accounts],
            "validators": [{"public_key": k.hex(), "stake": s} for k, s in self.validators],
            "evaluators": [{"address": str(a), "stake": s} for a, s in self.evaluators],
        }


def _amount(value: Any, where: str, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value <= MAX_AMOUNT:
        raise InvalidGenesis(f"{where}: expected an integer in [{minimum}, 2**63-1], got {value!r}")
    return value


def _entries(data: dict[str, Any], name: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    entries = data.get(name, [])
    if not isinstance(entries, list):
        raise InvalidGenesis(f"{name}: expected a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != set(fields):
            raise InvalidGenesis(f"{name}[{i}]: expected exactly the fields {list(fields)}")
    return entries


def _address(text: Any, where: str) -> Address:
    try:
        return Address.parse(text)
    except BcaiError as exc:
        raise InvalidGenesis(f"{where}: {exc}") from None


def parse_genesis(data: Any) -> Genesis:
    """Check a decoded genesis document and build a `Genesis`."""
    if not isinstance(data, dict):
        raise InvalidGenesis("genesis must be a map")
    unknown = set(data) - {"chain_id", "params", "accounts", "validators", "evaluators"}
    if unknown:
        raise InvalidGenesis(f"unknown genesis fields: {sorted(unknown)}")
    chain_id = data.get("chain_id")
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise InvalidGenesis(f"chain_id: 1..64 printable ASCII characters without spaces, got {chain_id!r}")
    overrides = data.get("params", {})
    if not isinstance(overrides, dict):
        raise InvalidGenesis("params: expected a map")
    try:
        params = Params.from_dict(overrides)
    except BcaiError as exc:
        raise InvalidGenesis(f"params: {exc}") from None
    accounts = []
    for i, entry in enumerate(_entries(data, "accounts", ("address", "balance"))):
        accounts.append((_address(entry["address"], f"accounts[{i}].address"),
                         _amount(entry["balance"], f"accounts[{i}].balance", 1)))
    validators = []
    for i, entry in enumerate(_entries(data, "validators", ("public_key", "stake"))):
        try:
            key = PublicKey(bytes.fromhex(entry["public_key"]))
        except (BcaiError, ValueError, TypeError):
            raise InvalidGenesis(f"validators[{i}].public_key: 64 hex digits of an ed25519 key") from None
        validators.append((key, _amount(entry["stake"], f"validators[{i}].stake", params.min_validator_bond)))
    evaluators = []
    for i, entry in enumerate(_entries(data, "evaluators", ("address", "stake"))):
        evaluators.append((_address(entry["address"], f"evaluators[{i}].address"),
                           _amount(entry["stake"], f"evaluators[{i}].stake", params.min_evaluator_stake)))
    for name, items in (("accounts", [a for a, _ in accounts]), ("validators", [k.address for k, _ in validators]),
                        ("evaluators", [a for a, _ in evaluators])):
        if len(set(items)) != len(items):
            raise InvalidGenesis(f"{name}: the same address appears twice")
    if not validators:
        raise InvalidGenesis("validators: a chain needs at least one validator")
    total = sum(b for _, b in accounts) + sum(s for _, s in validators) + sum(s for _, s in evaluators)
    if total > MAX_AMOUNT:
        raise InvalidGenesis(f"total genesis supply {total} exceeds 2**63-1")
    return Genesis(chain_id, params, tuple(accounts), tuple(validators), tuple(evaluators))


def load_genesis(path: str | Path) -> Genesis:
    """Read and check a genesis file (`.json` or `.toml`)."""
    path = Path(path)
    try:
        text = read_utf8(path)
    except OSError as exc:
        raise InvalidGenesis(f"cannot read genesis file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidGenesis(f"genesis file {path} is not UTF-8 text: {exc}") from None
    try:
        data = load_toml(text) if path.suffix == ".toml" else load_json(text)
    except ValueError as exc:
        raise InvalidGenesis(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    return parse_genesis(data)


def compute_genesis_state(genesis: Genesis) -> State:
    """The state at height 0: params, minted balances and stakes, the first validator set."""
    state = State()
    state.kv.set(K_CHAIN, encode(genesis.chain_id))
    state.kv.set(K_HEIGHT, encode(0))
    state.set_params(genesis.params)
    for address, balance in genesis.accounts:
        process_mint(state, address, balance)
    for key, stake in genesis.validators:
        state.set_validator(key.address, Validator(key, stake))
        state.set_supply(state.supply + stake)
    for address, stake in genesis.evaluators:
        state.set_evaluator(address, Evaluator(stake))
        state.set_supply(state.supply + stake)
    process_genesis_validator_set(state)
    return state
