"""Deterministic simulation of a bcai validator network, with fault injection and checkers.

- `simulator.py`: `SimConfig`, `Simulation`, `SimReport`, `run_simulation` (virtual clock,
  one seed, crash/restart with WAL replay, catch-up, transaction load).
- `network.py`: `LinkModel` (latency, loss, duplication, reordering), partitions.
- `byzantine.py`: behaviours `equivocate`, `silent`, `bad-pouw`, `amnesia`, `garbage`,
  `duplicate-key`.
- `checkers.py`: agreement, validity, liveness, accountability, supply conservation.
- `app.py`: `SimApplication`, the simulator's own small test application (signed
  transfers, stake, slashing, supply invariant) behind the engine's `Application` boundary.
"""

from bcai.sim.app import SimApplication, make_bond, make_transfer
from bcai.sim.byzantine import BEHAVIOURS, Behaviour, get_behaviour
from bcai.sim.checkers import Checkers
from bcai.sim.network import LinkModel, PartitionSchedule, PartitionWindow
from bcai.sim.simulator import SimConfig, SimNode, SimReport, Simulation, run_simulation

__all__ = [
    "BEHAVIOURS", "Behaviour", "Checkers", "LinkModel", "PartitionSchedule", "PartitionWindow", "SimApplication",
    "SimConfig", "SimNode", "SimReport", "Simulation", "get_behaviour", "make_bond", "make_transfer", "run_simulation",
]
