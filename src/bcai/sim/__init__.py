"""Deterministic simulation of a bcai validator network, with fault injection and checkers.

- `simulator.py`: `SimConfig`, `Simulation`, `SimReport`, `run_simulation` (virtual clock,
  one seed, crash/restart with WAL replay, catch-up, transaction load).
- `network.py`: `LinkModel` (latency, loss, duplication, reordering), partitions.
- `byzantine.py`: behaviours `equivocate`, `silent`, `bad-pouw`, `amnesia`, `garbage`,
  `duplicate-key`.
- `checkers.py`: agreement, validity, liveness, accountability, supply conservation.

Every node runs the real ledger (`bcai.ledger`) behind `bcai.consensus.LedgerApplication`:
the load is signed transfers, evidence slashes through the ledger, validator sets come
from its staking module and the supply checker is the ledger's `check_invariants`.
"""

from bcai.sim.byzantine import BEHAVIOURS, Behaviour, get_behaviour
from bcai.sim.checkers import Checkers
from bcai.sim.network import LinkModel, PartitionSchedule, PartitionWindow
from bcai.sim.simulator import SimConfig, SimNode, SimReport, Simulation, run_simulation

__all__ = [
    "BEHAVIOURS", "Behaviour", "Checkers", "LinkModel", "PartitionSchedule", "PartitionWindow",
    "SimConfig", "SimNode", "SimReport", "Simulation", "get_behaviour", "run_simulation",
]
