"""What goes into the engine (events) and what comes out (actions).

Every event carries `now_ms`, the shell's clock: the engine never reads a clock itself.
The shell must carry out the actions of one `handle` call in order; in particular a
`PersistWal` must be durable (fsynced) before any later `Broadcast` is sent, which is
what makes a restarted node unable to double-sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from bcai.consensus.messages import Block, CommitCertificate, DuplicateVoteEvidence, Message, WalEntry
from bcai.errors import BcaiError

PROPOSE, PREVOTE_STEP, PRECOMMIT_STEP = 0, 1, 2
GOSSIP = 3  # not a step: "re-send what we signed in this round" (links may lose messages)
COMMIT_WAIT = 4  # not a step: the pause after a commit before round 0 of the next height
SOLVE = 5  # not a step: the proposer goes on with its nonce search (when searching in slices)


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Begin (or resume, after replaying the WAL) at the height after the app's last block."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class Received:
    """A proposal or vote from the network: a parsed message, or raw wire bytes."""

    message: Message | bytes
    now_ms: int


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    height: int
    round: int
    step: int  # PROPOSE, PREVOTE_STEP, PRECOMMIT_STEP, GOSSIP or COMMIT_WAIT
    now_ms: int


@dataclass(frozen=True, slots=True)
class SyncBlock:
    """Catch-up: a committed block with its certificate, from a peer or the block store."""

    block: Block
    certificate: CommitCertificate
    now_ms: int


Event = Union[Start, Received, TimeoutFired, SyncBlock]


# --- actions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistWal:
    """Make `entry` durable before carrying out any later action."""

    entry: WalEntry


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Message


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    height: int
    round: int
    step: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """A block was decided (and applied to the app): store it with its certificate."""

    block: Block
    certificate: CommitCertificate
    app_hash: bytes


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    evidence: DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class SendBlocks:
    """A validator is behind: send it our committed blocks from `from_height` on."""

    to: bytes  # validator address
    from_height: int


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A received message broke a rule (lower the sender's score)."""

    error: BcaiError


Action = Union[PersistWal, Broadcast, ScheduleTimeout, CommitBlock, EvidenceFound, SendBlocks, MessageRejected]
