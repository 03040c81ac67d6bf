"""A small chain harness for ledger tests that doubles as a test-vector writer.

(Kept out of conftest.py so tests can import it by a name unique in the repository.)

Every test that uses the `chain` fixture records its steps (tx bytes or blocks, each with the
error code it must raise or None) between the state before its first step (`pre`) and the
state after its last (`post`). With BCAI_WRITE_VECTORS=1 the fixture writes them to
tests/vectors/ledger/<test name>.json; test_ledger_vectors.py replays the committed ones.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bcai.crypto import Address, PrivateKey
from bcai.errors import InvalidBlock, InvalidTransaction
from bcai.ledger import (
    Capabilities, Genesis, LedgerBlock, Misbehaviour, Params, SignedTx, State, TxBody, check_invariants,
    compute_genesis_state, encode_tx, get_validator_set, process_block, process_tx,
)

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "ledger"
CHAIN_ID = "bcai-test-1"
NAMES = ("alice", "bob", "carol", "val1", "val2", "eval1", "eval2", "eval3", "worker1", "worker2", "worker3")
CAPS = Capabilities(cpu_cores=8, memory_mb=16384, gpu_count=1, gpu_memory_mb=16384, bandwidth_mbps=1000,
                    node_type="gpu")


def make_genesis(params: Params | None = None) -> Genesis:
    keys = {name: PrivateKey.from_label(name) for name in NAMES}
    return Genesis(
        CHAIN_ID,
        params or Params(),
        accounts=tuple((keys[n].address, 1_000_000) for n in NAMES),
        validators=((keys["val1"].public_key, 1000), (keys["val2"].public_key, 1000)),
        evaluators=((keys["eval1"].address, 300), (keys["eval2"].address, 200), (keys["eval3"].address, 100)),
    )


def dump_state(state: State) -> list[list[str]]:
    return [[k.hex(), v.hex()] for k, v in state.dump()]


def load_state(dump: list[list[str]]) -> State:
    state = State()
    for k, v in dump:
        state.kv.set(bytes.fromhex(k), bytes.fromhex(v))
    return state


def block_to_json(block: LedgerBlock) -> dict[str, Any]:
    return {
        "height": block.height,
        "proposer": str(block.proposer),
        "txs": [t.hex() for t in block.txs],
        "last_commit_signers": [str(a) for a in block.last_commit_signers],
        "misbehaviour": [[str(m.address), m.height, m.kind, m.evidence_hash.hex()] for m in block.misbehaviour],
    }


def block_from_json(data: dict[str, Any]) -> LedgerBlock:
    return LedgerBlock(
        data["height"], Address.parse(data["proposer"]), tuple(bytes.fromhex(t) for t in data["txs"]),
        tuple(Address.parse(a) for a in data["last_commit_signers"]),
        tuple(Misbehaviour(Address.parse(a), h, k, bytes.fromhex(e)) for a, h, k, e in data["misbehaviour"]),
    )


class Chain:
    def __init__(self, params: Params | None = None) -> None:
        self.keys = {name: PrivateKey.from_label(name) for name in NAMES}
        self.state = compute_genesis_state(make_genesis(params))
        self.pre = dump_state(self.state)
        self.steps: list[dict[str, Any]] = []

    def addr(self, name: str) -> Address:
        return self.keys[name].address

    def balance(self, name: str) -> int:
        return self.state.get_balance(self.addr(name))

    def nonce(self, name: str) -> int:
        return self.state.get_account(self.addr(name))[1]

    def sign(self, name: str, body: TxBody, *, fee: int = 1, nonce: int | None = None,
             chain_id: str = CHAIN_ID) -> bytes:
        return encode_tx(self.keys[name], self.nonce(name) if nonce is None else nonce, fee, chain_id, body)

    def tx(self, name: str, body: TxBody, **kw: Any) -> SignedTx:
        return self.apply(self.sign(name, body, **kw))

    def apply(self, raw: bytes) -> SignedTx:
        tx = process_tx(self.state, raw)
        self.steps.append({"tx": raw.hex(), "error": None})
        check_invariants(self.state)
        return tx

    def reject(self, name_or_raw: str | bytes, body: TxBody | None = None, error: type = InvalidTransaction,
               **kw: Any) -> InvalidTransaction:
        raw = name_or_raw if isinstance(name_or_raw, bytes) else self.sign(name_or_raw, body, **kw)  # type: ignore[arg-type]
        before, root = self.state.dump(), self.state.root()
        with pytest.raises(error) as info:
            process_tx(self.state, raw)
        assert self.state.dump() == before and self.state.root() == root, "a rejected tx changed the state"
        self.steps.append({"tx": raw.hex(), "error": info.value.code})
        return info.value

    def make_block(self, txs: tuple[bytes, ...] = (), signers: tuple[str, ...] | None = None,
                   misbehaviour: tuple[Misbehaviour, ...] = (), proposer: str = "val1") -> LedgerBlock:
        height = self.state.height + 1
        if signers is None:
            expected = get_validator_set(self.state, height - 1) if height >= 2 else []
            signer_addrs = tuple(v.address for v in expected)
        else:
            signer_addrs = tuple(self.addr(n) for n in signers)
        return LedgerBlock(height, self.addr(proposer), txs, signer_addrs, misbehaviour)

    def block(self, *args: Any, **kw: Any) -> None:
        block = self.make_block(*args, **kw)
        process_block(self.state, block)
        self.steps.append({"block": block_to_json(block), "error": None})
        check_invariants(self.state)

    def reject_block(self, block: LedgerBlock) -> InvalidBlock:
        before, root = self.state.dump(), self.state.root()
        with pytest.raises(InvalidBlock) as info:
            process_block(self.state, block)
        assert self.state.dump() == before and self.state.root() == root, "a rejected block changed the state"
        self.steps.append({"block": block_to_json(block), "error": info.value.code})
        return info.value

    def advance(self, n: int, **kw: Any) -> None:
        for _ in range(n):
            self.block(**kw)

    def write_vector(self, name: str) -> None:
        VECTOR_DIR.mkdir(parents=True, exist_ok=True)
        vector = {
            "name": name,
            "pre": self.pre,
            "steps": self.steps,
            "post": dump_state(self.state),
            "post_root": self.state.root().hex(),
        }
        (VECTOR_DIR / f"{name}.json").write_text(json.dumps(vector, indent=1) + "\n")
