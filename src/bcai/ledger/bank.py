"""Bank: balances, transfers, mint, burn, and where protocol shares and slashes go."""

from __future__ import annotations

from bcai.crypto import Address
from bcai.errors import InsufficientFunds, InvalidAmount
from bcai.ledger.params import MAX_AMOUNT
from bcai.ledger.state import State
from bcai.ledger.tx import Burn, SignedTx, Transfer


def process_transfer(state: State, tx: SignedTx, body: Transfer, balance: int, nonce: int) -> None:
    """The hot path: `process_tx` has checked the envelope and hands over the sender's
    account as read (fee not yet taken), so the sender is written once, fee and amount together.
    """
    sender = tx.sender_address
    # a positive amount that the sender holds on top of the fee
    if body.amount <= 0:
        raise InvalidAmount("transfer amount must be positive")
    if balance < tx.fee + body.amount:
        raise InsufficientFunds(f"balance {balance} < amount {body.amount} + fee {tx.fee}")
    state.set_account(sender, balance - tx.fee - body.amount, nonce + 1)
    state.add_balance(body.to, body.amount)
    state.set_fee_pool(state.fee_pool + tx.fee)


def process_burn(state: State, tx: SignedTx, body: Burn) -> None:
    sender = tx.sender_address
    # a burn destroys a positive amount the sender holds
    if body.amount <= 0:
        raise InvalidAmount("burn amount must be positive")
    balance, nonce = state.get_account(sender)
    if balance < body.amount:
        raise InsufficientFunds(f"balance {balance} < amount {body.amount}")
    state.set_account(sender, balance - body.amount, nonce)
    state.set_supply(state.supply - body.amount)


def process_mint(state: State, to: Address, amount: int) -> None:
    """Create `amount` new tokens in `to`'s balance (genesis and block rewards only)."""
    if amount < 0 or state.supply + amount > MAX_AMOUNT:
        raise InvalidAmount(f"minting {amount} would leave the supply outside [0, 2**63-1]")
    state.add_balance(to, amount)
    state.set_supply(state.supply + amount)


def process_protocol_income(state: State, amount: int) -> None:
    """Route a protocol share or a slashed amount: to the treasury, or burned (a parameter)."""
    if amount == 0:
        return
    if state.params.burn_protocol_share:
        state.set_supply(state.supply - amount)
    else:
        state.set_treasury(state.treasury + amount)
