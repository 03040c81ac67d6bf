"""The node process: wires roles (validator, worker, evaluator, client) to the shells.

- `node.py`: `Node`, the asyncio process (engine driving, timers, p2p, tx gossip, block
  sync, API server, events).
- `service.py`: `NodeReads`, the read side of the API's `NodeService` (Node inherits it).
- `application.py`: `NodeApplication`, the consensus `Application` of a node (the
  consensus ledger adapter plus mempool, check state and chain store); `CommittedBlock`.
- `wal.py`: `ConsensusWal`, the fsynced consensus write-ahead log.
- `chainspec.py`: `ChainSpec` (ledger genesis + consensus params + genesis time).
- `home.py`: `init_home`, the layout of a node home.
- `config.py`: `NodeConfig`, the `config.toml` of a node home.
- `mempool.py`: `Mempool`, pending transactions with limits and fee ordering (pure core).
- `sigcache.py`: `VerifiedSignatures`, the bounded set of tx hashes whose signature this
  node has verified (passed to the ledger so each signature is checked once per node).
- `telemetry.py`: JSON-lines logs and Prometheus metrics.
- `devnet.py`: local devnets (`up`, `down`, status); `processes.py`: starting and stopping
  the node processes a devnet owns.
- `views.py`: JSON views of ledger and chain records.
"""

from bcai.node.application import CommittedBlock, NodeApplication
from bcai.node.chainspec import ChainSpec, load_chain_spec, save_chain_spec
from bcai.node.config import NodeConfig, load_config, save_config
from bcai.node.home import init_home
from bcai.node.mempool import Mempool
from bcai.node.node import Node
from bcai.node.sigcache import VerifiedSignatures
from bcai.node.wal import ConsensusWal

__all__ = [
    "ChainSpec", "CommittedBlock", "ConsensusWal", "NodeApplication", "Mempool", "Node", "NodeConfig",
    "init_home", "load_chain_spec", "load_config", "save_chain_spec", "save_config",
    "VerifiedSignatures",
]
