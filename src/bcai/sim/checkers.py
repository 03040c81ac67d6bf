"""Invariant checkers, fed after every commit and every signed vote the simulator sees.

- agreement: never two different blocks committed at one height (`forks` counts heights);
- validity: every committed block re-checked independently (proof of useful work, and a
  certificate with more than 2/3 of the power of that height's validators);
- liveness: after the last fault heals, some honest node commits within `liveness_bound_ms`
  (or the run already reached its target height);
- accountability: on a fork, the validators proven to have signed two conflicting votes
  (from every signed vote on the wire) hold more than 1/3 of the power (f+1 culprits);
- supply conservation: the application's supply invariant holds after every block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bcai.consensus.config import ConsensusParams
from bcai.consensus.messages import Block, CommitCertificate, Vote
from bcai.consensus.validators import Validator
from bcai.errors import BcaiError
from bcai.verify.pouw import WorkContext, verify_work


@dataclass
class CheckerState:
    commits: dict[int, dict[bytes, set[int]]] = field(default_factory=dict)  # height -> block id -> nodes
    commit_times: list[int] = field(default_factory=list)
    checked_blocks: set[bytes] = field(default_factory=set)
    invalid_blocks: list[str] = field(default_factory=list)
    supply_failures: list[str] = field(default_factory=list)
    votes: dict[tuple[bytes, int, int, int], set[bytes | None]] = field(default_factory=dict)
    culprits: set[bytes] = field(default_factory=set)
    evidence_committed: set[bytes] = field(default_factory=set)
    rounds_max: int = 0


class Checkers:
    def __init__(self, params: ConsensusParams, liveness_bound_ms: int) -> None:
        self.params = params
        self.liveness_bound_ms = liveness_bound_ms
        self.s = CheckerState()

    def on_vote_sent(self, vote: Vote) -> None:
        key = (vote.validator, vote.height, vote.round, vote.vote_type)
        seen = self.s.votes.get(key)
        if seen is None:
            self.s.votes[key] = {vote.block_id}
        elif vote.block_id not in seen:
            seen.add(vote.block_id)
            self.s.culprits.add(vote.validator)

    def on_commit(
        self, node: int, block: Block, cert: CommitCertificate, validators: list[Validator], now_ms: int, supply_ok: bool
    ) -> None:
        s = self.s
        s.commits.setdefault(block.height, {}).setdefault(block.block_id, set()).add(node)
        s.commit_times.append(now_ms)
        s.rounds_max = max(s.rounds_max, cert.round)
        s.evidence_committed.update(e.evidence_id for e in block.evidence)
        if not supply_ok:
            s.supply_failures.append(f"node {node} height {block.height}")
        if block.block_id not in s.checked_blocks:
            s.checked_blocks.add(block.block_id)
            problem = self._check_committed(block, cert, validators)
            if problem:
                s.invalid_blocks.append(f"height {block.height}: {problem}")

    def _check_committed(self, block: Block, cert: CommitCertificate, validators: list[Validator]) -> str | None:
        h = block.header
        ctx = WorkContext(h.prev_hash, h.height, self.params.matrix_n, self.params.freivalds_k)
        try:
            verify_work(ctx, h.proof_kind, h.task_id, h.model_hash, h.nonce, h.tx_root, h.target, block.proof)
        except BcaiError as exc:
            return f"bad proof of useful work: {exc}"
        by_address = {v.address: v for v in validators}
        power = 0
        for vote in cert.votes():
            v = by_address.get(vote.validator)
            if v is None or not v.public_key.is_valid_signature("vote", self.params.chain_id, vote.signed_bytes(), vote.signature):
                return "certificate holds a bad signature"
            power += v.power
        if 3 * power <= 2 * sum(v.power for v in validators):
            return "certificate lacks more than 2/3 of the power"
        return None

    @property
    def forks(self) -> int:
        return sum(1 for ids in self.s.commits.values() if len(ids) > 1)

    def get_culprit_power(self, validators: list[Validator]) -> tuple[int, int]:
        total = sum(v.power for v in validators)
        return sum(v.power for v in validators if v.address in self.s.culprits), total

    def is_live(self, last_fault_end_ms: int, finished: bool) -> bool:
        if finished:
            return True
        end = last_fault_end_ms + self.liveness_bound_ms
        return any(last_fault_end_ms <= t <= end for t in self.s.commit_times)

