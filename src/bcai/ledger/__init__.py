"""The ledger: bcai's on-chain state machine, pure (no I/O, no clock, no randomness).

- `types.py`: domain types `Amount`, `Height`, `JobId`.
- `params.py`: `Params`, every governable number with the SPEC's default.
- `kvstate.py`: `KVState`, canonical key-value entries with the bucketed incremental state
  root, checkpoints (rollback/commit) and inclusion proofs.
- `state.py`: `State`, typed records (accounts, validators, workers, evaluators, jobs,
  proposals, challenges) over the key-value state.
- `tx.py`: transaction bodies, the signed envelope, `encode_tx` / `decode_tx`.
- `process.py`: `process_tx`, `process_block`, `LedgerBlock`, rewards.
- `bank.py`: transfers, mint, burn, protocol income (treasury or burn).
- `staking.py`: bond, unbond, unjail, unbonding maturity, the validator set by height.
- `slashing.py`: `Misbehaviour` evidence (equivocation) and downtime.
- `registry.py`: worker registry and evaluator pool.
- `jobs.py`: jobs (federated and competitive), escrow, evaluator assignment, attestations,
  round checkpoints, `distribute_payment`, `compute_competitive_winner`.
- `governance.py`: proposals, votes, tallies and enactment.
- `challenges.py`: the challenge registry (seed 004).
- `supply.py`: supply breakdown and invariant checks.
- `genesis.py`: genesis files (`load_genesis`, `compute_genesis_state`).
"""

from bcai.ledger.genesis import Genesis, compute_genesis_state, load_genesis, parse_genesis
from bcai.ledger.kvstate import KVState, StateProof, verify_proof
from bcai.ledger.params import BPS, MAX_AMOUNT, Params, compute_params_with, get_evidence_window
from bcai.ledger.process import BlockResult, LedgerBlock, check_tx, compute_block_txs, decode_transaction, process_block, process_tx
from bcai.ledger.slashing import Misbehaviour
from bcai.ledger.staking import compute_validator_set, get_total_power, get_validator_set
from bcai.ledger.state import JOB_MODES, JOB_STATES, Challenge, Evaluator, Job, Proposal, State, Validator, ValidatorInfo, Worker
from bcai.ledger.supply import check_invariants, compute_supply_breakdown, compute_total_supply
from bcai.ledger.tx import (
    TX_KINDS, Attest, Bond, Burn, CancelJob, Capabilities, DeregisterEvaluator, DeregisterWorker, PostJob,
    ProposeChange, RecordCheckpoint, RegisterChallenge, RegisterEvaluator, RegisterWorker, SignedTx, SubmitResult, Transfer, TxBody,
    Unbond, Unjail, UpdateWorker, Volunteer, Vote, compute_challenge_metadata_bytes, decode_tx, encode_tx,
)
from bcai.ledger.types import Amount, Height, JobId

__all__ = [
    "BPS", "JOB_MODES", "JOB_STATES", "MAX_AMOUNT", "TX_KINDS",
    "Amount", "Attest", "BlockResult", "Bond", "Burn", "CancelJob", "Capabilities", "Challenge",
    "DeregisterEvaluator", "DeregisterWorker", "Evaluator", "Genesis", "Height", "Job", "JobId", "KVState",
    "LedgerBlock", "Misbehaviour", "Params", "PostJob", "Proposal", "ProposeChange", "RecordCheckpoint", "RegisterChallenge",
    "RegisterEvaluator", "RegisterWorker", "SignedTx", "State", "StateProof", "SubmitResult", "Transfer",
    "TxBody", "Unbond", "Unjail", "UpdateWorker", "Validator", "ValidatorInfo", "Volunteer", "Vote", "Worker",
    "check_invariants", "check_tx", "compute_block_txs", "compute_challenge_metadata_bytes", "compute_genesis_state", "compute_params_with",
    "compute_supply_breakdown", "compute_total_supply", "compute_validator_set", "decode_transaction",
    "decode_tx", "encode_tx", "get_evidence_window", "get_total_power", "get_validator_set", "load_genesis", "parse_genesis",
    "process_block", "process_tx", "verify_proof",
]
