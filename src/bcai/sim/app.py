"""The simulator's test application: balances, signed transfers, stake, slashing.

This is *not* the ledger (`bcai.ledger`, written separately): it is the smallest
application with real semantics the consensus simulator needs to exercise the engine's
`Application` boundary — signed balance transfers with nonces and fees, a block reward
(mint), stake that defines the validator set two heights later, equivocation evidence that
slashes 5% of stake (burned) and jails, and a supply invariant
(supply = balances + stakes = genesis + minted - burned) checked after every block.

Transactions are `encode([body, signature])` with body
`["transfer", sender_public_key, recipient_address, amount, nonce]` or
`["bond", sender_public_key, amount, nonce]` (a validator moves balance into its own
stake), signed with domain "tx" and the chain id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from bcai.consensus.messages import Block, CommitCertificate
from bcai.consensus.validators import Validator
from bcai.crypto import PrivateKey, PublicKey, sha256
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidBlock

FEE = 1
BLOCK_REWARD = 10
SLASH_PPM = 50_000  # 5% of stake for equivocation
POWER_UNIT = 1  # stake per unit of voting power


def make_transfer(key: PrivateKey, chain_id: str, to: bytes, amount: int, nonce: int) -> bytes:
    body = ["transfer", key.public_key.raw, to, amount, nonce]
    return encode([body, key.sign("tx", chain_id, encode(body))])


def make_bond(key: PrivateKey, chain_id: str, amount: int, nonce: int) -> bytes:
    body = ["bond", key.public_key.raw, amount, nonce]
    return encode([body, key.sign("tx", chain_id, encode(body))])


@dataclass
class SimState:
    balances: dict[bytes, int]
    nonces: dict[bytes, int]
    stakes: dict[bytes, int]
    keys: dict[bytes, PublicKey]  # validator address -> key
    jailed: set[bytes] = field(default_factory=set)
    minted: int = 0
    burned: int = 0

    def copy(self) -> SimState:
        return SimState(dict(self.balances), dict(self.nonces), dict(self.stakes), self.keys, set(self.jailed), self.minted, self.burned)


class SimApplication:
    """An `Application` for the simulator (see module docstring)."""

    def __init__(
        self,
        chain_id: str,
        balances: dict[bytes, int],
        stakes: dict[bytes, tuple[PublicKey, int]],
        verified: set[bytes] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.state = SimState(
            dict(balances), {}, {a: s for a, (_, s) in stakes.items()}, {a: k for a, (k, _) in stakes.items()}
        )
        self.genesis_supply = self.get_total_supply()
        self.height = 0
        self.app_hash = self._compute_hash()
        genesis_set = self._compute_validators()
        self._validators: dict[int, list[Validator]] = {1: genesis_set, 2: genesis_set}
        self.mempool: dict[bytes, None] = {}  # tx bytes in arrival order
        self._verified = verified  # shared cache of tx bytes whose signature verified

    # --- Application protocol --------------------------------------------------------

    def get_last_height(self) -> int:
        return self.height

    def get_app_hash(self) -> bytes:
        return self.app_hash

    def get_validators(self, height: int) -> Sequence[Validator]:
        known = self._validators.get(height)
        if known is None:
            raise KeyError(f"no validator set for height {height} (last committed {self.height})")
        return known

    def build_payload(self, height: int, max_bytes: int) -> tuple[bytes, ...]:
        scratch = self.state.copy()
        chosen: list[bytes] = []
        used = 0
        for tx in list(self.mempool):
            try:
                self._apply_tx(scratch, tx)
            except BcaiError:
                del self.mempool[tx]  # stale or invalid: it can never go in a block now
                continue
            if used + len(tx) > max_bytes:
                break
            chosen.append(tx)
            used += len(tx)
        return tuple(chosen)

    def check_payload(self, height: int, txs: tuple[bytes, ...]) -> None:
        scratch = self.state.copy()
        for tx in txs:
            self._apply_tx(scratch, tx)

    def apply_block(self, block: Block, certificate: CommitCertificate) -> bytes:
        state = self.state.copy()
        for tx in block.txs:
            self._apply_tx(state, tx)
            state.balances[block.header.proposer] = state.balances.get(block.header.proposer, 0) + FEE
            self.mempool.pop(tx, None)
        # block reward: minted to the proposer
        state.balances[block.header.proposer] = state.balances.get(block.header.proposer, 0) + BLOCK_REWARD
        state.minted += BLOCK_REWARD
        # equivocation evidence (verified by the engine): slash 5% (burned) and jail
        for ev in block.evidence:
            if ev.validator in state.jailed:
                continue
            cut = state.stakes.get(ev.validator, 0) * SLASH_PPM // 1_000_000
            state.stakes[ev.validator] -= cut
            state.burned += cut
            state.jailed.add(ev.validator)
        self.state = state
        self.height = block.height
        self.app_hash = self._compute_hash()
        self._validators[self.height + 2] = self._compute_validators()
        return self.app_hash

    # --- the rest --------------------------------------------------------------------

    def add_tx(self, tx: bytes) -> None:
        self.mempool.setdefault(tx, None)

    def get_total_supply(self) -> int:
        return sum(self.state.balances.values()) + sum(self.state.stakes.values())

    def is_supply_conserved(self) -> bool:
        return self.get_total_supply() == self.genesis_supply + self.state.minted - self.state.burned

    def _compute_validators(self) -> list[Validator]:
        s = self.state
        return [
            Validator(s.keys[a], stake // POWER_UNIT)
            for a, stake in sorted(s.stakes.items())
            if a not in s.jailed and stake // POWER_UNIT > 0
        ]

    def _compute_hash(self) -> bytes:
        s = self.state
        return sha256(encode([
            self.height, sorted(s.balances.items()), sorted(s.nonces.items()), sorted(s.stakes.items()),
            sorted(s.jailed), s.minted, s.burned,
        ]))

    def _apply_tx(self, state: SimState, tx: bytes) -> None:
        """Check then apply one transaction to `state`; raise `InvalidBlock` and change nothing."""
        body, sender = self._check_signature(tx)
        # the nonce is the sender's next one
        if body[-1] != state.nonces.get(sender, 0):
            raise InvalidBlock("tx nonce is not the sender's next nonce")
        amount = body[3] if body[0] == "transfer" else body[2]
        if type(amount) is not int or amount <= 0:
            raise InvalidBlock("tx amount must be a positive integer")
        # the sender can pay amount + fee
        if state.balances.get(sender, 0) < amount + FEE:
            raise InvalidBlock("insufficient balance for amount + fee")
        if body[0] == "bond" and sender not in state.keys:
            raise InvalidBlock("only a validator can bond stake to itself")
        state.balances[sender] -= amount + FEE
        state.nonces[sender] = body[-1] + 1
        if body[0] == "transfer":
            state.balances[body[2]] = state.balances.get(body[2], 0) + amount
        else:
            state.stakes[sender] += amount

    def _check_signature(self, tx: bytes) -> tuple[list[Any], bytes]:
        try:
            body, signature = decode(tx)
            kind = body[0]
            shape_ok = (kind == "transfer" and len(body) == 5 and isinstance(body[2], bytes) and len(body[2]) == 20) or (
                kind == "bond" and len(body) == 4
            )
            if not shape_ok or type(body[-1]) is not int:
                raise InvalidBlock("malformed transaction")
            key = PublicKey(body[1])
        except (BcaiError, ValueError, TypeError, IndexError):
            raise InvalidBlock("malformed transaction") from None
        if self._verified is None or tx not in self._verified:
            try:
                key.verify("tx", self.chain_id, encode(body), signature)
            except BcaiError:
                raise InvalidBlock("transaction signature does not verify") from None
            if self._verified is not None:
                self._verified.add(tx)
        return body, key.address.raw
