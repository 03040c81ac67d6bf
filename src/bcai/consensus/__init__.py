"""Stake-weighted Tendermint BFT with proof-of-useful-work blocks, as a pure core.

- `engine.py`: `Engine.handle(event) -> list[Action]`, the round state machine (locks,
  polkas, timeouts, commits, evidence, WAL replay, catch-up).
- `events.py`: the events the engine takes and the actions it returns.
- `messages.py`: frozen, canonically encoded `BlockHeader`, `Block`, `Proposal`, `Vote`,
  `CommitCertificate`, `DuplicateVoteEvidence`, `WalLock`; `encode_message` /
  `decode_message`; signing.
- `blocks.py`: `ChainTip`, `build_block`, `check_block` (the engine's `valid(v)`),
  `check_evidence`, `check_certificate`.
- `validators.py`: `Validator`, `ValidatorSet` (quorums, weighted round-robin proposer).
- `difficulty.py`: the PoUW target, adjusted toward a target block time by at most 5%.
- `config.py`: `ConsensusParams` (timeouts, limits, PoUW size), `Genesis`.
- `app.py`: `Application`, what the engine needs from the ledger.
- `ledger_app.py`: `LedgerApplication`, that boundary implemented over `bcai.ledger`.

The proof-of-useful-work kinds themselves live in `bcai.verify`.
"""

from bcai.consensus.app import Application
from bcai.consensus.blocks import (
    ChainTip,
    build_block,
    check_block,
    check_certificate,
    check_evidence,
    compute_expected_target,
)
from bcai.consensus.config import ConsensusParams, Genesis
from bcai.consensus.difficulty import compute_next_target
from bcai.consensus.engine import Engine
from bcai.consensus.ledger_app import LedgerApplication, SharedExecution, compute_ledger_block
from bcai.consensus.events import (
    PRECOMMIT_STEP,
    PREVOTE_STEP,
    PROPOSE,
    Action,
    Broadcast,
    CommitBlock,
    Event,
    EvidenceFound,
    MessageRejected,
    PersistWal,
    Received,
    ScheduleTimeout,
    SendBlocks,
    Start,
    SyncBlock,
    TimeoutFired,
)
from bcai.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    Block,
    BlockHeader,
    CommitCertificate,
    DuplicateVoteEvidence,
    Message,
    Proposal,
    Vote,
    WalEntry,
    WalLock,
    compute_evidence_root,
    compute_tx_root,
    decode_message,
    encode_message,
    sign_proposal,
    sign_vote,
)
from bcai.consensus.validators import Validator, ValidatorSet, compute_next_proposer

__all__ = [
    "PRECOMMIT", "PRECOMMIT_STEP", "PREVOTE", "PREVOTE_STEP", "PROPOSE", "Action", "Application", "Block",
    "BlockHeader", "Broadcast", "ChainTip", "CommitBlock", "CommitCertificate", "ConsensusParams",
    "DuplicateVoteEvidence", "Engine", "Event", "EvidenceFound", "Genesis", "LedgerApplication", "Message", "MessageRejected",
    "PersistWal", "Proposal", "Received", "ScheduleTimeout", "SendBlocks", "SharedExecution", "Start", "SyncBlock", "TimeoutFired",
    "Validator", "ValidatorSet", "Vote", "WalEntry", "WalLock", "build_block", "check_block", "check_certificate", "check_evidence",
    "compute_evidence_root", "compute_expected_target", "compute_ledger_block", "compute_next_proposer", "compute_next_target",
    "compute_tx_root", "decode_message", "encode_message", "sign_proposal", "sign_vote",
]
