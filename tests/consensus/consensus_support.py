"""A small harness for engine unit tests (fixtures are in conftest.py): four validators on the real ledger, helpers to
build blocks, proposals and votes by any of them, and to feed one engine by hand."""

from __future__ import annotations

import dataclasses
from typing import Any

from bcai.consensus import (
    PRECOMMIT,
    PREVOTE,
    Block,
    Broadcast,
    ChainTip,
    ConsensusParams,
    Engine,
    Genesis,
    LedgerApplication,
    Proposal,
    Received,
    Start,
    Vote,
    build_block,
    sign_proposal,
    sign_vote,
)
from bcai.consensus.blocks import solve_work
from bcai.crypto import PrivateKey, sha256
from bcai.ledger import Genesis as LedgerGenesis
from bcai.ledger import Params, compute_genesis_state

CHAIN = "bcai-cons-test"
KEYS = [PrivateKey.from_label(f"cons-test-validator-{i}") for i in range(4)]
USER = PrivateKey.from_label("cons-test-user")
GENESIS = Genesis(time_ms=0, genesis_hash=sha256(b"cons-test-genesis"))


def make_params(**changes: Any) -> ConsensusParams:
    base = ConsensusParams(chain_id=CHAIN, matrix_n=16, freivalds_k=2, genesis_target=2**63, target_block_ms=200)
    return dataclasses.replace(base, **changes)


def make_app(powers: tuple[int, ...] = (10, 10, 10, 10)) -> LedgerApplication:
    accounts = ((USER.address, 1_000_000), (KEYS[0].address, 1_000_000))
    genesis = LedgerGenesis(CHAIN, Params(), accounts, tuple((k.public_key, p) for k, p in zip(KEYS, powers)))
    return LedgerApplication(compute_genesis_state(genesis))


class Harness:
    """One engine (validator `me`) and the keys of the others, fed by hand."""

    def __init__(self, me: int | None = None, params: ConsensusParams | None = None, wal: list[Any] | None = None,
                 app: LedgerApplication | None = None, tip: ChainTip | None = None) -> None:
        self.params = params or make_params()
        self.app = app or make_app()
        self.now = 1000
        probe = Engine(self.params, GENESIS, self.app, None, tip)
        probe.handle(Start(0))
        if me is None:  # a validator that proposes none of rounds 0, 1 and 2
            busy = {probe.validators.get_proposer(r).address for r in range(3)}
            me = next(i for i, k in enumerate(KEYS) if k.address.raw not in busy)
        self.me = me
        self.key = KEYS[me]
        self.engine = Engine(self.params, GENESIS, self.app, self.key, tip, wal or [])
        self.actions = self.engine.handle(Start(self.now))

    def proposer_key(self, round_: int) -> PrivateKey:
        address = self.engine.validators.get_proposer(round_).address
        return next(k for k in KEYS if k.address.raw == address)

    def others(self) -> list[PrivateKey]:
        return [k for i, k in enumerate(KEYS) if i != self.me]

    def make_block(self, time_offset: int = 0, txs: tuple[bytes, ...] = (), proposer: PrivateKey | None = None) -> Block:
        tip = self.engine.tip
        key = proposer or self.proposer_key(0)
        return build_block(self.params, tip, self.app.get_app_hash(), key.address.raw, txs, (),
                           self.now + time_offset, solve_work(self.params, tip))

    def propose(self, block: Block, round_: int = 0, pol_round: int = -1) -> Proposal:
        return sign_proposal(self.proposer_key(round_), CHAIN, round_, pol_round, block)

    def vote(self, key: PrivateKey, vote_type: int, round_: int, block_id: bytes | None, height: int | None = None) -> Vote:
        return sign_vote(key, CHAIN, vote_type, height or self.engine.height, round_, block_id)

    def feed(self, message: Any) -> list[Any]:
        self.now += 10
        self.actions = self.engine.handle(Received(message, self.now))
        return self.actions

    def my_votes(self, actions: list[Any] | None = None, vote_type: int | None = None) -> list[Vote]:
        acts = self.actions if actions is None else actions
        return [a.message for a in acts if isinstance(a, Broadcast) and isinstance(a.message, Vote)
                and a.message.validator == self.key.address.raw and (vote_type is None or a.message.vote_type == vote_type)]

    def polka(self, round_: int, block_id: bytes | None, vote_type: int = PREVOTE, count: int = 2) -> list[Any]:
        """Deliver `count` votes from other validators; returns all actions."""
        out: list[Any] = []
        for key in self.others()[:count]:
            out += self.feed(self.vote(key, vote_type, round_, block_id))
        return out


__all__ = ["CHAIN", "GENESIS", "KEYS", "PRECOMMIT", "PREVOTE", "USER", "Harness", "make_app", "make_params"]
