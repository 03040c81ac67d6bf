"""Engine parameters (all governable): timeouts, block limits and proof of useful work."""

from __future__ import annotations

from dataclasses import dataclass

from bcai.consensus.difficulty import PPM, compute_min_target
from bcai.errors import InvalidConsensusParams
from bcai.verify.pouw import MAX_TARGET


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    chain_id: str = "bcai-devnet"
    # timeouts in milliseconds; each grows by `timeout_delta_ms` per round
    timeout_propose_ms: int = 3000
    timeout_prevote_ms: int = 1000
    timeout_precommit_ms: int = 1000
    timeout_delta_ms: int = 500
    timeout_commit_ms: int = 1000  # pause after a commit: late precommits still reach the next block's last commit
    gossip_interval_ms: int = 1000  # re-send our messages while a round makes no progress
    block_resend_ms: int = 2000  # how soon we offer blocks again to a peer still behind
    max_block_bytes: int = 4 * 1024 * 1024
    max_block_txs: int = 10_000
    max_evidence_per_block: int = 100
    max_clock_drift_ms: int = 10_000  # how far a proposed block's time may lie in our future
    # proof of useful work
    proof_kind: str = "matrix"
    matrix_n: int = 256
    freivalds_k: int = 4
    genesis_target: int = MAX_TARGET // 1024  # about 1024 nonce tries per block
    target_block_ms: int = 5000
    max_target_change_ppm: int = 50_000  # 5% per block

    def __post_init__(self) -> None:
        # the difficulty rule must be able to run: a positive block time, a step under 100%,
        # and a genesis target its steps can both raise and lower (difficulty.py)
        if self.target_block_ms <= 0:
            raise InvalidConsensusParams(f"target_block_ms must be positive, got {self.target_block_ms}")
        if not 0 <= self.max_target_change_ppm < PPM:
            raise InvalidConsensusParams(f"max_target_change_ppm must be in 0..{PPM - 1}, got {self.max_target_change_ppm}")
        low = compute_min_target(self.max_target_change_ppm)
        if not low <= self.genesis_target <= MAX_TARGET:
            raise InvalidConsensusParams(f"genesis_target must be in {low}..2^64-1 (below {low} a "
                                         f"{self.max_target_change_ppm} ppm step rounds to nothing), got {self.genesis_target}")

    def get_timeout_ms(self, step: int, round_: int) -> int:
        base = (self.timeout_propose_ms, self.timeout_prevote_ms, self.timeout_precommit_ms)[step]
        return base + round_ * self.timeout_delta_ms


@dataclass(frozen=True, slots=True)
class Genesis:
    """What every node agrees on before block 1."""

    time_ms: int
    genesis_hash: bytes  # stands in for the previous block id of block 1
