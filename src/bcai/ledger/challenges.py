"""Challenge registry (seed 004): signed challenge metadata, lifecycle changed by governance only.

Anyone registers a challenge (a WASM evaluator module by CID plus a policy of integer limits);
it starts "proposed". Its id is SHA-256 of the signed metadata bytes. The author signs the
metadata itself (domain "challenge"), so a copy of the record proves who wrote it. Moving it
to "active", "suspended" or "retired" happens only when a governance proposal passes.
"""

from __future__ import annotations

import hashlib

from bcai.errors import AlreadyExists, BadTransactionSignature, InvalidParameter, InvalidSignature, UnknownEntity, \
    WrongState
from bcai.ledger.state import Challenge, State
from bcai.ledger.tx import RegisterChallenge, SignedTx, compute_challenge_metadata_bytes

# status -> statuses it may move to
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("active", "retired"),
    "active": ("suspended", "retired"),
    "suspended": ("active", "retired"),
    "retired": (),
}


def compute_challenge_id(body: RegisterChallenge) -> bytes:
    return hashlib.sha256(compute_challenge_metadata_bytes(body.name, body.wasm_cid, body.policy)).digest()


def process_register_challenge(state: State, tx: SignedTx, body: RegisterChallenge) -> None:
    metadata = compute_challenge_metadata_bytes(body.name, body.wasm_cid, body.policy)
    challenge_id = hashlib.sha256(metadata).digest()
    # the metadata is signed by the sender, and not registered yet
    try:
        tx.sender.verify("challenge", state.chain_id, metadata, body.metadata_signature)
    except InvalidSignature:
        raise BadTransactionSignature("challenge metadata signature does not verify") from None
    if state.get_challenge(challenge_id) is not None:
        raise AlreadyExists("challenge already registered")
    state.set_challenge(
        challenge_id,
        Challenge(tx.sender, body.name, body.wasm_cid, body.policy, body.metadata_signature, state.height),
    )


def check_challenge_transition(state: State, challenge_id: bytes, status: str) -> None:
    challenge = state.get_challenge(challenge_id)
    if challenge is None:
        raise UnknownEntity(f"unknown challenge {challenge_id.hex()}")
    if status not in TRANSITIONS:
        raise InvalidParameter(f"unknown challenge status {status!r}")
    if status not in TRANSITIONS[challenge.status]:
        raise WrongState(f"challenge cannot go from {challenge.status} to {status}")


def process_challenge_status(state: State, challenge_id: bytes, status: str) -> None:
    challenge = state.get_challenge(challenge_id)
    assert challenge is not None
    challenge.status = status
    state.set_challenge(challenge_id, challenge)
