"""The public names other subsystems import (a rename here is a breaking change)."""

from __future__ import annotations

import bcai.consensus
import bcai.sim
import bcai.verify


def test_public_api_is_pinned() -> None:
    for name in ("Engine", "Application", "LedgerApplication", "SharedExecution", "ConsensusParams", "Genesis",
                 "ChainTip", "Block", "BlockHeader", "Proposal", "Vote", "CommitCertificate", "DuplicateVoteEvidence",
                 "WalLock", "Start", "Received", "TimeoutFired", "SyncBlock", "PersistWal", "Broadcast",
                 "ScheduleTimeout", "CommitBlock", "EvidenceFound", "SendBlocks", "MessageRejected", "Validator",
                 "ValidatorSet", "encode_message", "decode_message", "sign_vote", "sign_proposal", "check_block",
                 "build_block", "compute_next_target"):
        assert name in bcai.consensus.__all__ and hasattr(bcai.consensus, name), name
    for name in ("ProofKind", "register_proof_kind", "get_proof_kind", "verify_work", "MATRIX_PRODUCT",
                 "compute_work_hash", "compute_nonce"):
        assert name in bcai.verify.__all__ and hasattr(bcai.verify, name), name
    for name in ("SimConfig", "SimReport", "Simulation", "run_simulation", "LinkModel", "BEHAVIOURS"):
        assert name in bcai.sim.__all__ and hasattr(bcai.sim, name), name
    assert set(bcai.sim.BEHAVIOURS) >= {"equivocate", "silent", "bad-pouw", "amnesia", "garbage", "duplicate-key"}
