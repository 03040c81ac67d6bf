"""What the consensus engine needs from the application (the ledger), as a Protocol.

The application is a pure core too, so the engine calls it directly. It is told about a
block only once the block has a commit certificate; until then it is only asked whether a
payload is acceptable.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from bcai.consensus.messages import Block, CommitCertificate
from bcai.consensus.validators import Validator


class Application(Protocol):
    def get_last_height(self) -> int:
        """The height of the last committed block (0 before the first)."""

    def get_app_hash(self) -> bytes:
        """The 32-byte state root after the last committed block (goes in the next header)."""

    def get_validators(self, height: int) -> Sequence[Validator]:
        """The validators that vote on block `height` (bonded stake, jailed excluded).

        Staking changes made in block h take effect at height h + 2, so this is defined for
        every height up to `get_last_height() + 2`, and back through the evidence window
        (evidence of an old double vote is checked against the set of its height). Every
        node must give the same answer (from its chain state, not from what it happens to
        remember); a height it no longer knows raises a `BcaiError`.
        """

    def get_evidence_max_age(self) -> int:
        """How many blocks after its height a double vote may still be punished (the evidence
        in block h may be from heights h - age .. h); a chain parameter, read from the state
        the next block builds on."""

    def build_payload(self, height: int, max_bytes: int, draft: Block | None = None) -> tuple[bytes, ...]:
        """Transactions for a block we propose, their encodings summing to at most `max_bytes`.

        `draft` is that block without its transactions: its evidence and last commit apply
        before them, so the txs must be valid after those."""

    def check_payload(self, block: Block) -> None:
        """Raise a `BcaiError` if the application cannot apply `block` (its txs, evidence,
        last-commit signers) on top of its state; change nothing."""

    def apply_block(self, block: Block, certificate: CommitCertificate) -> bytes:
        """Apply a committed block and return the new app hash.

        `block.evidence` holds duplicate-vote evidence the engine has verified (both
        signatures valid, from a validator of that height): the application slashes and
        jails. `certificate` says who signed (for downtime accounting).
        """
