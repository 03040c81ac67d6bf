"""The public API of bcai.ledger and bcai.store is pinned: renaming a name breaks this test."""

import bcai.ledger
import bcai.store
from bcai.errors import InsufficientFunds
from bcai.ledger import Transfer, check_tx

LEDGER_API = {
    "BPS", "JOB_MODES", "JOB_STATES", "MAX_AMOUNT", "TX_KINDS", "Amount", "Attest", "BlockResult", "Bond", "Burn", "CancelJob",
    "Capabilities", "Challenge", "DeregisterEvaluator", "DeregisterWorker", "Evaluator", "Genesis", "Height", "Job",
    "JobId", "KVState", "LedgerBlock", "Misbehaviour", "Params", "PostJob", "Proposal", "ProposeChange",
    "RecordCheckpoint", "RegisterChallenge", "RegisterEvaluator", "RegisterWorker", "SignedTx", "State", "StateProof", "SubmitResult",
    "Transfer", "TxBody", "Unbond", "Unjail", "UpdateWorker", "Validator", "ValidatorInfo", "Volunteer", "Vote",
    "Worker", "check_invariants", "check_tx", "compute_block_txs", "compute_challenge_metadata_bytes", "compute_genesis_state",
    "compute_params_with", "compute_supply_breakdown", "compute_total_supply", "compute_validator_set",
    "decode_transaction", "decode_tx", "encode_tx", "get_evidence_window", "get_total_power", "get_validator_set", "load_genesis",
    "parse_genesis", "process_block", "process_tx", "verify_proof",
}


def test_public_names():
    assert set(bcai.ledger.__all__) == LEDGER_API
    assert all(hasattr(bcai.ledger, name) for name in LEDGER_API)
    assert {"ChainStore", "MemoryChainStore", "SqliteChainStore", "StoredBlock", "StoredTx"} <= set(bcai.store.__all__)


def test_check_tx_never_changes_state(chain):
    before = chain.state.dump()
    tx = check_tx(chain.state, chain.sign("alice", Transfer(chain.addr("bob"), 5)))
    assert tx.body.amount == 5 and chain.state.dump() == before
    import pytest

    with pytest.raises(InsufficientFunds):
        check_tx(chain.state, chain.sign("alice", Transfer(chain.addr("bob"), 10**9)))
    assert chain.state.dump() == before


def test_consensus_timeouts_are_params(chain):
    p = chain.state.params
    assert (p.timeout_propose_ms, p.timeout_prevote_ms, p.timeout_precommit_ms, p.timeout_delta_ms) == (
        3000, 1000, 1000, 500)
