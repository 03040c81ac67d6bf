"""Hostile bytes: decoding and applying arbitrary or mutated tx bytes only ever raises InvalidTransaction."""

import pytest
from hypothesis import given, settings, strategies as st

from bcai.crypto import PrivateKey
from bcai.encoding import decode as reference_decode, encode
from bcai.errors import InvalidTransaction
from bcai.ledger import PostJob, Transfer, decode_tx, encode_tx, process_tx
from bcai.crypto import Cid
from ledger_support import Chain

KEY = PrivateKey.from_label("alice")
VALID = [
    encode_tx(KEY, 0, 1, "bcai-test-1", Transfer(PrivateKey.from_label("bob").address, 5)),
    encode_tx(KEY, 0, 1, "bcai-test-1", PostJob(Cid.of(b"spec"), 1000, 1, 100, 50, 1, 1, 20)),
]
CHAIN = Chain()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_are_rejected_cleanly(data):
    before = CHAIN.state.root()
    try:
        process_tx(CHAIN.state, data)
    except InvalidTransaction:
        pass
    assert CHAIN.state.root() == before


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                                        max_size=4), st.integers(-3, 3))
def test_mutated_transactions_are_rejected_or_identical(raw, flips, cut):
    data = bytearray(raw)
    for position, value in flips:
        data[position % len(data)] = value
    if cut > 0:
        data = data[:-cut]
    elif cut < 0:
        data += b"\x00" * -cut
    data = bytes(data)
    try:
        tx = decode_tx(data, 1 << 16)
    except InvalidTransaction:
        return
    # whatever the fast decoder accepts, the reference canonical decoder accepts too
    assert reference_decode(data) == [tx.payload, tx.signature]
    assert reference_decode(tx.payload)["kind"] == tx.body.KIND
    before = CHAIN.state.root()
    try:
        process_tx(CHAIN.state, data)
    except InvalidTransaction:
        assert CHAIN.state.root() == before


def test_shared_reference_bomb_in_a_payload_is_rejected_at_once():
    """Tags 28/29 (shared values) nest a tree of 2**60 nodes into 400 payload bytes; a
    decoder that accepted them and re-encoded the payload to check it would never return."""
    bomb = b"\xd8\x1c" + encode([0])  # 28([0]); level k is 28([level k-1, 29(index of level k-1)])
    for level in range(1, 61):
        bomb = b"\xd8\x1c\x82" + bomb + b"\xd8\x1d" + encode(61 - level)
    payload = bytes.fromhex("a163666565") + bomb  # {"fee": bomb}
    data = bytes.fromhex("8259") + len(payload).to_bytes(2, "big") + payload + bytes.fromhex("5840") + bytes(64)
    with pytest.raises(InvalidTransaction, match="tags"):
        decode_tx(data, 1 << 16)
