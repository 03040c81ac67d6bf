"""Every governable number of the chain, with the SPEC's defaults.

Fractions are basis points (1/10000) so that no float ever enters consensus. Heights count
blocks; timeouts are milliseconds (read by the consensus engine). A governance proposal
changes fields by name (`compute_params_with`), and each field has a range checked there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bcai.errors import InvalidParameter

BPS = 10_000  # basis points in 100%
MAX_AMOUNT = 2**63 - 1  # the supply cap: no amount, balance or total may exceed it


@dataclass(frozen=True, slots=True)
class Params:
    # bank and transactions
    min_fee: int = 1
    max_tx_bytes: int = 64 * 1024
    max_block_bytes: int = 4 * 1024 * 1024
    block_reward: int = 10
    burn_protocol_share: bool = False  # False: treasury share and slashes go to the treasury
    # staking and validators
    min_validator_bond: int = 1
    max_validators: int = 100
    unbonding_period: int = 100  # blocks
    validator_set_delay: int = 2  # a change at height h takes effect at h + 2
    # slashing
    equivocation_slash_bps: int = 500  # 5%
    downtime_slash_bps: int = 100  # 1%
    downtime_window: int = 100  # blocks
    downtime_max_missed: int = 50  # jailed when missing more than this many in the window
    # double-sign evidence is accepted for this many blocks after the offence (and never
    # longer than `unbonding_period`, the time stake stays slashable: `get_evidence_window`);
    # validator sets are kept in state for exactly that long
    evidence_max_age: int = 100
    jail_duration: int = 100  # blocks
    # workers and evaluators
    min_worker_stake: int = 10
    min_evaluator_stake: int = 10
    # jobs
    network_fee_bps: int = 100  # 1% of the budget, to validators
    worker_share_bps: int = 9_000  # 90%
    evaluator_share_bps: int = 500  # 5%; the rest (5%) goes to the treasury or is burned
    min_job_budget: int = 1
    max_job_duration: int = 100_000  # blocks between posting and deadline
    max_workers_per_job: int = 64
    max_evaluators_per_job: int = 16
    max_agreement_threshold_bps: int = 1_000  # jobs may allow at most 10 points of spread
    # governance
    voting_period: int = 100  # blocks from proposal to tally and enactment
    gov_pass_threshold_bps: int = 6_667  # yes power / total bonded power
    # consensus timeouts (milliseconds), read by the consensus engine
    timeout_propose_ms: int = 3_000
    timeout_prevote_ms: int = 1_000
    timeout_precommit_ms: int = 1_000
    timeout_delta_ms: int = 500  # added per round to each timeout

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Params:
        """Defaults overridden by `data`; unknown names or bad values raise `InvalidParameter`."""
        return compute_params_with(cls(), dict(data))


# (minimum, maximum) for each integer parameter; booleans are checked by type.
_RANGES: dict[str, tuple[int, int]] = {
    "min_fee": (0, MAX_AMOUNT),
    "max_tx_bytes": (256, 16 * 1024 * 1024),
    "max_block_bytes": (1024, 64 * 1024 * 1024),
    "block_reward": (0, 10**12),
    "min_validator_bond": (1, MAX_AMOUNT),
    "max_validators": (1, 10_000),
    "unbonding_period": (1, 10**7),
    "validator_set_delay": (2, 2),
    "equivocation_slash_bps": (0, BPS),
    "downtime_slash_bps": (0, BPS),
    "downtime_window": (1, 10_000),
    "downtime_max_missed": (0, 10_000),
    "evidence_max_age": (1, 10**6),
    "jail_duration": (1, 10**7),
    "min_worker_stake": (0, MAX_AMOUNT),
    "min_evaluator_stake": (1, MAX_AMOUNT),
    "network_fee_bps": (0, BPS),
    "worker_share_bps": (0, BPS),
    "evaluator_share_bps": (0, BPS),
    "min_job_budget": (1, MAX_AMOUNT),
    "max_job_duration": (1, 10**8),
    "max_workers_per_job": (1, 1_000),
    "max_evaluators_per_job": (1, 1_000),
    "max_agreement_threshold_bps": (0, BPS),
    "voting_period": (1, 10**7),
    "gov_pass_threshold_bps": (5_001, BPS),
    "timeout_propose_ms": (1, 600_000),
    "timeout_prevote_ms": (1, 600_000),
    "timeout_precommit_ms": (1, 600_000),
    "timeout_delta_ms": (0, 600_000),
}

PARAM_NAMES = tuple(f.name for f in dataclasses.fields(Params))


def compute_params_with(params: Params, changes: dict[str, Any]) -> Params:
    """`params` with `changes` applied, after checking every name, type and range."""
    for name, value in changes.items():
        if name not in PARAM_NAMES:
            raise InvalidParameter(f"unknown parameter {name!r}")
        if isinstance(getattr(params, name), bool):
            if value not in (0, 1) or (type(value) not in (bool, int)):
                raise InvalidParameter(f"parameter {name} is a boolean (0 or 1), got {value!r}")
            continue
        if type(value) is not int:
            raise InvalidParameter(f"parameter {name} is an integer, got {value!r}")
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise InvalidParameter(f"parameter {name}={value} outside [{low}, {high}]")
    merged = {n: (bool(v) if isinstance(getattr(params, n), bool) else v) for n, v in changes.items()}
    result = dataclasses.replace(params, **merged)
    if result.worker_share_bps + result.evaluator_share_bps > BPS:
        raise InvalidParameter("worker_share_bps + evaluator_share_bps exceeds 10000")
    if result.downtime_max_missed >= result.downtime_window:
        raise InvalidParameter("downtime_max_missed must be below downtime_window")
    return result


def get_evidence_window(params: Params) -> int:
    """How many blocks after an offence its evidence is accepted: `evidence_max_age`, capped
    at `unbonding_period` (after that, the stake that backed the offence may be gone)."""
    return min(params.evidence_max_age, params.unbonding_period)
