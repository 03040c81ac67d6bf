"""Byzantine behaviours: an honest engine whose outgoing messages (or memory) are bent.

Each behaviour is a small class; the simulator asks it what to actually send for each
message the node's honest engine broadcasts, and lets it tamper with the engine after
each event. `duplicate-key` is handled by the simulator itself (it starts a second,
honest node with the same key in the other half of the network).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Union

from bcai.consensus.engine import Engine
from bcai.consensus.messages import Message, Proposal, Vote, encode_message, sign_proposal, sign_vote
from bcai.crypto import PrivateKey, sha256
from bcai.encoding import encode
from bcai.errors import SimulationError
from bcai.verify.pouw import compute_nonce

Payload = Union[Message, bytes]
Sends = list[tuple[list[int], Payload]]


class Behaviour:
    name = "honest"
    sends_blocks = True  # answers catch-up requests

    def on_broadcast(self, key: PrivateKey, chain_id: str, message: Message, peers: list[int], rng: random.Random) -> Sends:
        return [(peers, message)]

    def after_handle(self, engine: Engine) -> None:
        return None


class Silent(Behaviour):
    """Receives everything, sends nothing."""

    name = "silent"
    sends_blocks = False

    def on_broadcast(self, key: PrivateKey, chain_id: str, message: Message, peers: list[int], rng: random.Random) -> Sends:
        return []


class Equivocate(Behaviour):
    """Signs a conflicting twin of every vote, and proposes different blocks to each half."""

    name = "equivocate"

    def on_broadcast(self, key: PrivateKey, chain_id: str, message: Message, peers: list[int], rng: random.Random) -> Sends:
        half = len(peers) // 2
        if isinstance(message, Vote):
            other = None if message.block_id is not None else sha256(b"equivocate" + encode(message.to_list()))
            twin = sign_vote(key, chain_id, message.vote_type, message.height, message.round, other)
            return [(peers[:half], message), (peers[half:], twin), (peers[:half], twin), (peers[half:], message)]
        header = dataclasses.replace(message.block.header, time_ms=message.block.header.time_ms + 1)
        twin_block = dataclasses.replace(message.block, header=header)
        twin_p = sign_proposal(key, chain_id, message.round, message.pol_round, twin_block)
        return [(peers[:half], message), (peers[half:], twin_p)]


class BadPouw(Behaviour):
    """Proposes blocks whose result is wrong (self-consistent header, failing Freivalds check)."""

    name = "bad-pouw"

    def on_broadcast(self, key: PrivateKey, chain_id: str, message: Message, peers: list[int], rng: random.Random) -> Sends:
        if not isinstance(message, Proposal):
            return [(peers, message)]
        block = message.block
        proof = bytes([block.proof[0] ^ 1]) + block.proof[1:]
        model_hash = sha256(proof)
        h = block.header
        nonce = compute_nonce(h.prev_hash, h.tx_root, model_hash, h.target)
        header = dataclasses.replace(h, model_hash=model_hash, nonce=nonce)
        bad = sign_proposal(key, chain_id, message.round, message.pol_round, dataclasses.replace(block, header=header, proof=proof))
        return [(peers, bad)]


class Amnesia(Behaviour):
    """Forgets its lock (and valid value) after every step: may prevote against its lock."""

    name = "amnesia"

    def after_handle(self, engine: Engine) -> None:
        engine.locked_round, engine.locked_block = -1, None
        engine.valid_round, engine.valid_block = -1, None


class Garbage(Behaviour):
    """Behaves honestly but also sends random bytes, malformed messages and forged signatures."""

    name = "garbage"

    def on_broadcast(self, key: PrivateKey, chain_id: str, message: Message, peers: list[int], rng: random.Random) -> Sends:
        noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        malformed = encode(["vote", [rng.randint(0, 9), "x", None]])
        sends: Sends = [(peers, message), (peers, noise), (peers, malformed)]
        if isinstance(message, Vote):
            forged = dataclasses.replace(message, signature=bytes(64))
            sends.append((peers, encode_message(forged)))
        return sends


class DuplicateKey(Behaviour):
    """Honest code; the simulator runs a second node with the same key elsewhere."""

    name = "duplicate-key"


BEHAVIOURS: dict[str, type[Behaviour]] = {
    cls.name: cls for cls in (Behaviour, Silent, Equivocate, BadPouw, Amnesia, Garbage, DuplicateKey)
}


def get_behaviour(name: str) -> Behaviour:
    try:
        return BEHAVIOURS[name]()
    except KeyError:
        raise SimulationError(f"unknown byzantine behaviour {name!r} (one of {', '.join(sorted(BEHAVIOURS))})") from None

