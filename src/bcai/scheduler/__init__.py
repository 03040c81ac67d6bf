"""Node telemetry, health, safety breaker, admission, assignment strategies and history.

Pure core (no clock, disk or randomness: `now` and seeds are arguments):

- `telemetry.py`: `TelemetrySample`, `Reputation`, `HealthScore`, `compute_health` (the
  0.4/0.3/0.2/0.1 health score), `is_healthy`.
- `safety.py`: `SafetyPolicy` (85 C / 100 ms / 25 errors), the circuit breaker
  `BreakerState` + `process_sample`, `compute_safety_violations`.
- `admission.py`: `NodeCapabilities`, `NodeRecord`, `JobPolicy`, the admission rules
  (`compute_admission_rejections`, `is_admissible`), `compute_max_concurrent_tasks(env)`.
- `strategies/`: the `AssignmentStrategy` plugin base and weighted, round-robin,
  least-loaded and latency-aware strategies, one file each; `get_strategy(name)`.
- `selection.py`: `select_nodes` (admission + breaker + health floor + strategy).
- `onchain.py`: `compute_assignment(volunteers, policy, seed_bytes)`, integer-only, what
  every validator computes identically; `Volunteer`, `OnchainTelemetry`, `compute_health_ppm`.
- `checks.py`: small field checks shared by the records above.
- `history.py`: the assignment-history rules (`AssignmentHistory`) and the in-memory
  reference backend.

Shell:

- `sqlite_history.py`: `SqliteAssignmentHistory`, the SQLite backend.
"""

from bcai.scheduler.admission import (
    ANY_NODE_TYPE,
    DEFAULT_MAX_CONCURRENT_TASKS,
    HEARTBEAT_TIMEOUT_S,
    LEGACY_MAX_TASKS_ENV,
    MAX_CONCURRENT_TASKS_ENV,
    JobPolicy,
    NodeCapabilities,
    NodeRecord,
    compute_admission_rejections,
    compute_max_concurrent_tasks,
    is_admissible,
    is_online,
)
from bcai.scheduler.history import AssignmentHistory, AssignmentRow, InMemoryAssignmentHistory
from bcai.scheduler.onchain import (
    OnchainTelemetry,
    Volunteer,
    compute_assignment,
    compute_health_ppm,
    compute_onchain_telemetry,
)
from bcai.scheduler.safety import BreakerState, SafetyPolicy, compute_safety_violations, is_within_policy, process_sample
from bcai.scheduler.selection import Candidate, Selection, select_nodes
from bcai.scheduler.sqlite_history import SqliteAssignmentHistory
from bcai.scheduler.strategies import (
    STRATEGIES,
    AssignmentStrategy,
    LatencyAwareStrategy,
    LeastLoadedStrategy,
    NodeView,
    RoundRobinStrategy,
    WeightedStrategy,
    get_strategy,
)
from bcai.scheduler.telemetry import HealthScore, Reputation, TelemetrySample, compute_health, is_healthy

__all__ = [
    "ANY_NODE_TYPE",
    "DEFAULT_MAX_CONCURRENT_TASKS",
    "HEARTBEAT_TIMEOUT_S",
    "LEGACY_MAX_TASKS_ENV",
    "MAX_CONCURRENT_TASKS_ENV",
    "STRATEGIES",
    "AssignmentHistory",
    "AssignmentRow",
    "AssignmentStrategy",
    "BreakerState",
    "Candidate",
    "HealthScore",
    "InMemoryAssignmentHistory",
    "JobPolicy",
    "LatencyAwareStrategy",
    "LeastLoadedStrategy",
    "NodeCapabilities",
    "NodeRecord",
    "NodeView",
    "OnchainTelemetry",
    "Reputation",
    "RoundRobinStrategy",
    "SafetyPolicy",
    "Selection",
    "SqliteAssignmentHistory",
    "TelemetrySample",
    "Volunteer",
    "WeightedStrategy",
    "compute_admission_rejections",
    "compute_assignment",
    "compute_health",
    "compute_health_ppm",
    "compute_max_concurrent_tasks",
    "compute_onchain_telemetry",
    "compute_safety_violations",
    "get_strategy",
    "is_admissible",
    "is_healthy",
    "is_online",
    "is_within_policy",
    "process_sample",
    "select_nodes",
]
