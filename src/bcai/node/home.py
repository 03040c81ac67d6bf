"""Creating node homes: keys, config.toml, genesis.json and consensus.json.

    HOME/
      config.toml          NodeConfig (see docs/node.md)
      genesis.json         the ledger genesis
      consensus.json       consensus parameters and genesis time
      keys/node.json       the node's ed25519 key (identity, validator key), mode 0600
      data/chain.db        SQLite chain store (blocks, txs, state)
      data/consensus.wal   the consensus write-ahead log
      data/content/        the content store (artifacts by CID)
      logs/node.log        JSON-lines logs
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bcai.consensus import ConsensusParams
from bcai.crypto import PrivateKey, PublicKey
from bcai.crypto.keystore import KeyStore
from bcai.errors import ConfigError
from bcai.crypto import Address
from bcai.ledger import Genesis
from bcai.node.chainspec import CONSENSUS_FILE, GENESIS_FILE, ChainSpec, save_chain_spec
from bcai.node.config import ApiConfig, NodeConfig, P2PConfig, save_config

DEFAULT_CHAIN_ID = "bcai-devnet"
VALIDATOR_STAKE = 1_000_000
NODE_BALANCE = 1_000_000_000

# Fast, small proofs of useful work for a local chain on a laptop: a 64x64 matrix task and
# an easy target, one-second target block time. Real networks pick their own in consensus.json.
LOCAL_CONSENSUS: dict[str, Any] = {
    "matrix_n": 64, "timeout_propose_ms": 2000, "timeout_prevote_ms": 500, "timeout_precommit_ms": 500,
    "timeout_delta_ms": 250, "target_block_ms": 300, "timeout_commit_ms": 100,
}


def compute_local_params(chain_id: str) -> ConsensusParams:
    params = replace(ConsensusParams(chain_id=chain_id), **LOCAL_CONSENSUS)
    return replace(params, genesis_target=params.genesis_target * 16)  # ~64 nonce tries


def make_genesis(chain_id: str, validators: list[PublicKey], accounts: list[tuple[Address, int]]) -> Genesis:
    from bcai.ledger import parse_genesis

    return parse_genesis({
        "chain_id": chain_id,
        "accounts": [{"address": str(a), "balance": b} for a, b in accounts],
        "validators": [{"public_key": k.hex(), "stake": VALIDATOR_STAKE} for k in validators],
    })


def init_home(home: Path, name: str, roles: tuple[str, ...] = ("validator",), chain_id: str = DEFAULT_CHAIN_ID,
              spec: ChainSpec | None = None, p2p: P2PConfig = P2PConfig(), api: ApiConfig = ApiConfig(),
              key: PrivateKey | None = None) -> NodeConfig:
    """Create a node home. Without `spec`, a one-validator chain of this node is generated.

    Everything is checked before anything is written, and a failed or interrupted init
    removes what it wrote: a second `init` would otherwise trip over the first one's key.
    """
    home = Path(home)
    if (home / "config.toml").exists():
        raise ConfigError(f"{home} already holds a node (config.toml exists)")
    key = key or PrivateKey.generate()
    if spec is None:
        genesis = make_genesis(chain_id, [key.public_key], [(key.address, NODE_BALANCE)])
        spec = ChainSpec(genesis, compute_local_params(chain_id), int(time.time() * 1000))
    config = NodeConfig(name=name, chain_id=spec.chain_id, roles=roles, p2p=p2p, api=api)
    written = [home, home / "keys", home / "keys" / "node.json", home / GENESIS_FILE, home / CONSENSUS_FILE,
               home / "config.toml", home / "logs"]
    written = [path for path in written if not path.exists() and not path.is_symlink()]
    try:
        home.mkdir(parents=True, exist_ok=True)
        KeyStore(home).create("node", key)
        save_chain_spec(spec, home)
        save_config(config, home / "config.toml")
        (home / "logs").mkdir(exist_ok=True)
    except BaseException:
        for path in reversed(written):  # files before the folders that hold them
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        raise
    return config
