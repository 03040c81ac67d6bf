"""The node process: wires roles (validator, worker, evaluator, client) to the shells.

- `config.py`: `NodeConfig`, the `config.toml` of a node home.
- `mempool.py`: `Mempool`, pending transactions with limits and fee ordering (pure core).
- `processes.py`: starting and stopping the node processes a devnet owns.
"""
