"""`process_tx` and `process_block`: the two entry points that change the state.

Transactions: the envelope is checked (size, encoding, chain id, signature, fee, nonce,
balance for the fee), then the fee is taken and the nonce bumped, then the kind's
`process_*` runs. All of it happens inside a state checkpoint: whichever check fails, the
state is rolled back to exactly what it was (one `InvalidTransaction` subclass is raised).
Transfers, the bulk of traffic, take a shorter path: `bank.process_transfer` checks
everything before its first write and writes the sender once (fee, amount and nonce).

Blocks: the proposer includes only valid transactions. `process_block` applies, in order,
(1) the misbehaviour evidence, (2) liveness of the last commit, (3) every tx, (4) the
end-of-block step: block reward + fee pool to the validators by power (remainder to the
proposer), unbonding maturity, job expiry, governance tallies, the validator set for
height + 2, and forgetting punished offences that left the evidence window. Any failure raises `InvalidBlock` and rolls the whole block back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import cbor2

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from bcai.crypto import Address, signing_bytes
from bcai.errors import (
    BadNonce, BadTransactionSignature, BcaiError, FeeTooLow, InsufficientFunds, InvalidBlock,
    InvalidTransaction, WrongChainId,
)
from bcai.ledger import bank, challenges, governance, jobs, registry, staking
from bcai.ledger.params import MAX_AMOUNT
from bcai.ledger.slashing import Misbehaviour, process_evidence_expiry, process_liveness, process_misbehaviour
from bcai.ledger.state import K_HEIGHT, State
from bcai.ledger.tx import SignedTx, Transfer, decode_tx

_HANDLERS: dict[str, Callable[[State, SignedTx, Any], None]] = {
    "burn": bank.process_burn,
    "bond": staking.process_bond,
    "unbond": staking.process_unbond,
    "unjail": staking.process_unjail,
    "register_worker": registry.process_register_worker,
    "update_worker": registry.process_update_worker,
    "deregister_worker": registry.process_deregister_worker,
    "register_evaluator": registry.process_register_evaluator,
    "deregister_evaluator": registry.process_deregister_evaluator,
    "post_job": jobs.process_post_job,
    "volunteer": jobs.process_volunteer,
    "submit_result": jobs.process_submit_result,
    "attest": jobs.process_attest,
    "cancel_job": jobs.process_cancel_job,
    "record_checkpoint": jobs.process_record_checkpoint,
    "propose": governance.process_propose,
    "vote": governance.process_vote,
    "register_challenge": challenges.process_register_challenge,
}


@functools.lru_cache(maxsize=16)
def _tx_prefix(chain_id: str) -> bytes:
    return signing_bytes("tx", chain_id, b"")


class SignatureCache(Protocol):
    """Hashes of txs whose signature this process has already verified (a node's cache).

    Keyed by the tx hash (SHA-256 of the exact tx bytes, which hold payload, sender, chain
    id and signature): a tx whose bytes differ in any way is verified again. Only the
    signature check is skipped for a known hash; every other rule still runs.
    """

    def __contains__(self, tx_hash: object) -> bool: ...
    def add(self, tx_hash: bytes) -> None: ...


def decode_transaction(state: State, data: bytes) -> SignedTx:
    """Decode tx bytes under the state's `max_tx_bytes` (no signature check)."""
    return decode_tx(data, state.params.max_tx_bytes)


def process_tx(state: State, tx: SignedTx | bytes, verified: SignatureCache | None = None) -> SignedTx:
    """Apply one transaction, or raise `InvalidTransaction` leaving the state unchanged.

    `tx` is the received bytes, or a `SignedTx` that `decode_tx` returned for them (the
    signature is checked on `tx.payload`, and `tx.body` must be what that payload decodes to).
    `verified`: a node's cache of tx hashes whose signature already checked; a hash in it
    skips only the signature check, and a newly verified one is added.
    """
    params = state.params
    if not isinstance(tx, SignedTx):
        tx = decode_tx(tx, params.max_tx_bytes)
    elif len(tx.raw) > params.max_tx_bytes:
        tx = decode_tx(tx.raw, params.max_tx_bytes)  # raises TransactionTooLarge
    chain_id = state.chain_id
    # the tx is for this chain and signed by its sender
    if tx.chain_id != chain_id:
        raise WrongChainId(f"tx is for chain {tx.chain_id!r}, this is {chain_id!r}")
    if verified is None:
        _verify_signature(tx, chain_id)
    else:
        tx_hash = tx.hash
        if tx_hash not in verified:
            _verify_signature(tx, chain_id)
            verified.add(tx_hash)
    # the fee reaches the minimum, the nonce is the next one, the balance covers the fee
    if tx.fee < params.min_fee:
        raise FeeTooLow(f"fee {tx.fee} < minimum {params.min_fee}")
    sender = tx.sender_address
    balance, nonce = state.get_account(sender)
    if tx.nonce != nonce:
        raise BadNonce(f"nonce {tx.nonce}, expected {nonce}")
    body = tx.body
    if type(body) is Transfer:
        bank.process_transfer(state, tx, body, balance, nonce)  # checks all, then writes
        return tx
    if balance < tx.fee:
        raise InsufficientFunds(f"balance {balance} < fee {tx.fee}")
    kv = state.kv
    mark = kv.checkpoint()
    try:
        state.set_account(sender, balance - tx.fee, nonce + 1)
        state.set_fee_pool(state.fee_pool + tx.fee)
        _HANDLERS[body.KIND](state, tx, body)
    except BaseException:
        kv.rollback(mark)
        raise
    kv.commit(mark)
    return tx


def _verify_signature(tx: SignedTx, chain_id: str) -> None:
    try:
        # the bytes `bcai.crypto.signing_bytes("tx", chain_id, payload)` builds, checked by
        # libsodium directly: the one verification rule, without per-call label checks
        crypto_sign_open(tx.signature + _tx_prefix(chain_id) + tx.payload, tx.sender.raw)
    except (BadSignatureError, NaclValueError):
        raise BadTransactionSignature("transaction signature does not verify") from None


def check_tx(state: State, tx: SignedTx | bytes) -> SignedTx:
    """Would `tx` apply on `state` now? Raises `InvalidTransaction` if not; never changes the state.

    For mempool admission and the API: it applies the tx inside a checkpoint and rolls back.
    """
    kv = state.kv
    mark = kv.checkpoint()
    try:
        return process_tx(state, tx)
    finally:
        kv.rollback(mark)


@dataclass(frozen=True, slots=True)
class LedgerBlock:
    """What the ledger needs from a block: the consensus engine builds it from the real one.

    `last_commit_signers`: validators whose precommit for block `height - 1` the block carries.
    `misbehaviour`: evidence the consensus engine has verified.
    """

    height: int
    proposer: Address
    txs: tuple[bytes, ...] = ()
    last_commit_signers: tuple[Address, ...] = ()
    misbehaviour: tuple[Misbehaviour, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockResult:
    state_root: bytes
    tx_hashes: tuple[bytes, ...]


def process_block(state: State, block: LedgerBlock, verified: SignatureCache | None = None,
                  decode: Callable[[bytes], SignedTx] | None = None) -> BlockResult:
    """Apply a whole block, or raise `InvalidBlock` leaving the state unchanged.

    `verified`: as for `process_tx` (a node's cache of already verified tx signatures).
    `decode`: where a node already holds a block tx decoded (its mempool), the `SignedTx`
    that `decode_tx` returned for exactly those bytes (it must decode any other bytes)."""
    kv = state.kv
    mark = kv.checkpoint()
    try:
        hashes = _apply_block(state, block, verified, decode)
    except BcaiError as exc:
        kv.rollback(mark)
        if isinstance(exc, InvalidBlock):
            raise
        raise InvalidBlock(f"block {block.height}: {exc.code}: {exc}") from exc
    except BaseException:
        kv.rollback(mark)
        raise
    kv.commit(mark)
    return BlockResult(state.root(), hashes)


def process_begin_block(state: State, block: LedgerBlock) -> list[staking.ValidatorInfo]:
    """The part of a block that runs before its transactions (height, evidence, liveness);
    returns the validators of the block's height. A proposer applies it to a scratch state
    before choosing txs: a slash in the prologue can invalidate a tx that was valid before.
    Raises `InvalidBlock` (the caller rolls back)."""
    # the next height, within the byte limit, proposed by a member of the set in force
    if block.height != state.height + 1:
        raise InvalidBlock(f"block height {block.height}, expected {state.height + 1}")
    if sum(len(tx) for tx in block.txs) > state.params.max_block_bytes:
        raise InvalidBlock("block transactions exceed max_block_bytes")
    validators = staking.get_validator_set(state, block.height)
    if block.proposer not in {v.address for v in validators}:
        raise InvalidBlock(f"proposer {block.proposer} is not in the validator set")
    state.kv.set(K_HEIGHT, cbor2.dumps(block.height))
    for evidence in block.misbehaviour:
        process_misbehaviour(state, evidence)
    process_liveness(state, block.height, block.last_commit_signers)
    return validators


def _apply_block(state: State, block: LedgerBlock, verified: SignatureCache | None,
                 decode: Callable[[bytes], SignedTx] | None) -> tuple[bytes, ...]:
    validators = process_begin_block(state, block)
    hashes = []
    for raw in block.txs:
        try:
            hashes.append(process_tx(state, raw if decode is None else decode(raw), verified).hash)
        except InvalidTransaction as exc:
            raise InvalidBlock(f"tx {len(hashes)} of block {block.height}: {exc.code}: {exc}") from exc
    process_rewards(state, block.proposer, validators)
    staking.process_unbonding_maturity(state, block.height)
    jobs.process_job_expiry(state, block.height)
    governance.process_tallies(state, block.height)
    staking.process_validator_set_update(state, block.height)
    process_evidence_expiry(state, block.height)
    return tuple(hashes)


def compute_block_txs(state: State, block: LedgerBlock, candidates: Iterable[bytes]) -> tuple[bytes, ...]:
    """For a proposer: the candidates (in order) that apply in a block like `block`.

    `block` gives the height, proposer, last commit signers and evidence (its `txs` are
    ignored). Each candidate is tried on top of the ones kept, as `process_block` will apply
    them; invalid ones and those that would pass `max_block_bytes` are dropped. The state is
    left unchanged (everything happens inside a checkpoint that is rolled back). Raises
    `InvalidBlock` when the block itself cannot start (wrong height, proposer, evidence).
    """
    kv = state.kv
    mark = kv.checkpoint()
    try:
        process_begin_block(state, LedgerBlock(block.height, block.proposer, (), block.last_commit_signers,
                                        block.misbehaviour))
        budget = state.params.max_block_bytes
        chosen: list[bytes] = []
        for raw in candidates:
            if len(raw) > budget:
                continue
            try:
                process_tx(state, raw)
            except InvalidTransaction:
                continue
            chosen.append(raw)
            budget -= len(raw)
        return tuple(chosen)
    finally:
        kv.rollback(mark)


def process_rewards(state: State, proposer: Address, validators: list[staking.ValidatorInfo]) -> None:
    """Mint the block reward and pay it with the fee pool to the validators, by power."""
    reward = state.params.block_reward
    if state.supply + reward > MAX_AMOUNT:
        reward = 0  # the supply cap is reached: no more block rewards
    state.set_supply(state.supply + reward)
    pot = state.fee_pool + reward
    if pot == 0:
        return
    total_power = staking.get_total_power(validators)
    paid = 0
    for info in validators:
        share = pot * info.power // total_power
        if share:
            state.add_balance(info.address, share)
            paid += share
    state.add_balance(proposer, pot - paid)
    state.set_fee_pool(0)
