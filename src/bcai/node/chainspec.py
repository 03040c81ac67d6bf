"""What every node of one chain must agree on before block 1: the ledger genesis plus the
consensus parameters and the genesis time.

    HOME/genesis.json     the ledger genesis (format in docs/genesis.md, `bcai.ledger.load_genesis`)
    HOME/consensus.json   {"genesis_time_ms": ..., "params": {ConsensusParams overrides}}

The ledger genesis format has no room for consensus parameters (it rejects unknown fields),
so they live in their own file beside it. The genesis hash (the "previous block id" of
block 1) covers both files' contents, so two nodes with different consensus parameters
cannot build on the same chain.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from bcai.consensus import ConsensusParams, Genesis as ConsensusGenesis
from bcai.crypto import sha256
from bcai.encoding import encode
from bcai.encoding.documents import load_json, read_utf8
from bcai.errors import ConfigError
from bcai.ledger import Genesis, load_genesis

GENESIS_FILE = "genesis.json"
CONSENSUS_FILE = "consensus.json"


@dataclass(frozen=True)
class ChainSpec:
    genesis: Genesis
    params: ConsensusParams
    genesis_time_ms: int

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def compute_genesis_hash(self) -> bytes:
        return sha256(encode([self.genesis.to_dict(), asdict(self.params), self.genesis_time_ms]))

    def get_consensus_genesis(self) -> ConsensusGenesis:
        return ConsensusGenesis(self.genesis_time_ms, self.compute_genesis_hash())


def parse_consensus_params(chain_id: str, overrides: Any) -> ConsensusParams:
    """`ConsensusParams` for `chain_id` with `overrides` (a map of integer or string fields)."""
    if not isinstance(overrides, dict):
        raise ConfigError("consensus params: expected a map")
    defaults = ConsensusParams()
    known = {f.name: getattr(defaults, f.name) for f in fields(ConsensusParams)}
    for name, value in overrides.items():
        if name == "chain_id":
            raise ConfigError("consensus params: chain_id comes from the genesis file")
        if name not in known:
            raise ConfigError(f"consensus params: unknown field {name!r}")
        if type(value) is not type(known[name]):
            raise ConfigError(f"consensus params: {name} must be {type(known[name]).__name__}")
        if isinstance(value, int) and value < 0:
            raise ConfigError(f"consensus params: {name} must not be negative")
    return replace(defaults, chain_id=chain_id, **overrides)


def load_chain_spec(home: Path) -> ChainSpec:
    genesis = load_genesis(Path(home) / GENESIS_FILE)
    path = Path(home) / CONSENSUS_FILE
    try:
        raw = load_json(read_utf8(path))
    except FileNotFoundError:
        raise ConfigError(f"no {CONSENSUS_FILE} in {home} (run `bcai node init`)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or set(raw) != {"genesis_time_ms", "params"}:
        raise ConfigError(f"{path}: expected exactly the fields genesis_time_ms, params")
    time_ms = raw["genesis_time_ms"]
    if type(time_ms) is not int or time_ms < 0:
        raise ConfigError(f"{path}: genesis_time_ms must be a non-negative integer")
    return ChainSpec(genesis, parse_consensus_params(genesis.chain_id, raw["params"]), time_ms)


def save_chain_spec(spec: ChainSpec, home: Path) -> None:
    home = Path(home)
    (home / GENESIS_FILE).write_text(json.dumps(spec.genesis.to_dict(), indent=2) + "\n")
    defaults = asdict(ConsensusParams(chain_id=spec.chain_id))
    overrides = {k: v for k, v in asdict(spec.params).items() if k != "chain_id" and v != defaults[k]}
    (home / CONSENSUS_FILE).write_text(json.dumps({"genesis_time_ms": spec.genesis_time_ms, "params": overrides},
                                                  indent=2) + "\n")
