"""Bank and the transaction envelope: transfers, burns, fees, nonces, signatures, decoding."""

import pytest

from bcai.crypto import Cid, PrivateKey
from bcai.encoding import decode, encode
from bcai.errors import (
    BadNonce, BadTransactionSignature, FeeTooLow, InsufficientFunds, InvalidAmount, MalformedTransaction,
    TransactionTooLarge, WrongChainId,
)
from bcai.ledger import Burn, Transfer, compute_total_supply, decode_tx
from bcai.ledger.params import MAX_AMOUNT

ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493  # L, RFC 8032 section 5.1


def test_transfer_moves_amount_and_takes_fee(chain):
    supply = chain.state.supply
    tx = chain.tx("alice", Transfer(chain.addr("bob"), 500), fee=3)
    assert chain.balance("alice") == 1_000_000 - 503
    assert chain.balance("bob") == 1_000_000 + 500
    assert chain.nonce("alice") == 1
    assert chain.state.fee_pool == 3
    assert chain.state.supply == supply == compute_total_supply(chain.state)
    assert tx.hash == __import__("hashlib").sha256(tx.raw).digest()


def test_transfer_to_new_account_and_to_self(chain):
    stranger = PrivateKey.from_label("stranger").address
    chain.tx("alice", Transfer(stranger, 7))
    assert chain.state.get_balance(stranger) == 7
    chain.tx("bob", Transfer(chain.addr("bob"), 10))
    assert chain.balance("bob") == 1_000_000 - 1


def test_transfer_whole_balance(chain):
    chain.tx("alice", Transfer(chain.addr("bob"), 1_000_000 - 1))
    assert chain.balance("alice") == 0


def test_block_pays_fees_to_validators(chain):
    chain.tx("alice", Transfer(chain.addr("bob"), 5), fee=100)
    before = chain.balance("val1"), chain.balance("val2")
    chain.block()
    reward = chain.state.params.block_reward
    # equal power: the pot (100 fees + reward) is split evenly
    assert chain.balance("val1") - before[0] == (100 + reward) // 2 + (100 + reward) % 2
    assert chain.balance("val2") - before[1] == (100 + reward) // 2
    assert chain.state.fee_pool == 0


def test_burn_reduces_supply(chain):
    supply = chain.state.supply
    chain.tx("alice", Burn(1000))
    assert chain.state.supply == supply - 1000
    assert chain.balance("alice") == 1_000_000 - 1001


def test_invalid_transfer_insufficient_balance(chain):
    chain.reject("alice", Transfer(chain.addr("bob"), 1_000_000), InsufficientFunds)


def test_invalid_fee_exceeds_balance(chain):
    chain.reject("alice", Transfer(chain.addr("bob"), 1), InsufficientFunds, fee=1_000_001)


def test_invalid_transfer_zero_amount(chain):
    chain.reject("alice", Transfer(chain.addr("bob"), 0), InvalidAmount)


def test_invalid_burn_zero_or_too_much(chain):
    chain.reject("alice", Burn(0), InvalidAmount)
    chain.reject("alice", Burn(2_000_000), InsufficientFunds)


def test_invalid_transfer_negative_amount(chain):
    raw = _forge(chain, "alice", "transfer", {"to": chain.addr("bob").raw, "amount": -5})
    chain.reject(raw, error=MalformedTransaction)


def test_invalid_transfer_amount_overflow(chain):
    raw = _forge(chain, "alice", "transfer", {"to": chain.addr("bob").raw, "amount": MAX_AMOUNT + 1})
    chain.reject(raw, error=MalformedTransaction)


def test_invalid_fee_too_low(chain):
    chain.reject("alice", Transfer(chain.addr("bob"), 1), FeeTooLow, fee=0)


def test_invalid_replayed_nonce(chain):
    raw = chain.sign("alice", Transfer(chain.addr("bob"), 1))
    chain.apply(raw)
    chain.reject(raw, error=BadNonce)


def test_invalid_future_nonce(chain):
    chain.reject("alice", Transfer(chain.addr("bob"), 1), BadNonce, nonce=5)


def test_invalid_wrong_chain_id(chain):
    chain.reject("alice", Transfer(chain.addr("bob"), 1), WrongChainId, chain_id="other-chain")


def test_invalid_bad_signature(chain):
    payload, sig = decode(chain.sign("alice", Transfer(chain.addr("bob"), 1)))
    forged = encode([payload, bytes([sig[0] ^ 1]) + sig[1:]])
    chain.reject(forged, error=BadTransactionSignature)


def test_invalid_malleated_signature(chain):
    # S + L verifies under the bare group equation; RFC 8032 (and libsodium) require S < L,
    # so one transaction cannot be given a second signature, and so a second hash
    payload, sig = decode(chain.sign("alice", Transfer(chain.addr("bob"), 1)))
    s = int.from_bytes(sig[32:], "little") + ED25519_ORDER
    chain.reject(encode([payload, sig[:32] + s.to_bytes(32, "little")]), error=BadTransactionSignature)


def test_invalid_signature_by_other_key(chain):
    # bob signs a payload that names alice as sender
    payload, _ = decode(chain.sign("alice", Transfer(chain.addr("bob"), 1)))
    forged = encode([payload, chain.keys["bob"].sign("tx", "bcai-test-1", payload)])
    chain.reject(forged, error=BadTransactionSignature)


def test_invalid_signature_from_another_domain(chain):
    payload, _ = decode(chain.sign("alice", Transfer(chain.addr("bob"), 1)))
    forged = encode([payload, chain.keys["alice"].sign("vote", "bcai-test-1", payload)])
    chain.reject(forged, error=BadTransactionSignature)


def test_invalid_tx_too_large(chain):
    raw = chain.sign("alice", Transfer(chain.addr("bob"), 1)) + b"\x00" * 70_000
    chain.reject(raw, error=TransactionTooLarge)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff",
        encode([b"abc"]),
        encode([1, 2]),
        encode({"a": 1}),
        encode([encode({"kind": "transfer"}), b"\x00" * 64]),
    ],
    ids=["empty", "not_cbor", "one_item", "ints", "map", "bad_payload"],
)
def test_invalid_malformed_bytes(chain, raw):
    chain.reject(raw, error=MalformedTransaction)


def test_invalid_non_canonical_encoding(chain):
    raw = chain.sign("alice", Transfer(chain.addr("bob"), 1))
    # re-encode the outer array's first length with a non-shortest head (0x98 0x02)
    non_canonical = b"\x98\x02" + raw[1:]
    chain.reject(non_canonical, error=MalformedTransaction)


def test_invalid_unknown_kind_and_extra_field(chain):
    chain.reject(_forge(chain, "alice", "mint", {"amount": 5}), error=MalformedTransaction)
    extra = {"to": chain.addr("bob").raw, "amount": 5, "memo": "hi"}
    chain.reject(_forge(chain, "alice", "transfer", extra), error=MalformedTransaction)
    chain.reject(_forge(chain, "alice", "transfer", {"to": b"short", "amount": 5}), error=MalformedTransaction)


def test_decode_roundtrip_is_exact(chain):
    raw = chain.sign("alice", Transfer(chain.addr("bob"), 42), fee=2)
    tx = decode_tx(raw, 1 << 16)
    assert tx.body == Transfer(chain.addr("bob"), 42)
    assert (tx.fee, tx.nonce, tx.chain_id, tx.raw) == (2, 0, "bcai-test-1", raw)


def _forge(chain, name, kind, body):
    """A correctly signed tx with an arbitrary body, to test decoding checks."""
    key = chain.keys[name]
    payload = encode({"body": body, "chain": "bcai-test-1", "fee": 1, "kind": kind,
                      "nonce": chain.nonce(name), "sender": key.public_key.raw})
    return encode([payload, key.sign("tx", "bcai-test-1", payload)])


@pytest.mark.parametrize("where", ["payload", "body"])
def test_invalid_unsorted_map_keys(chain, where):
    import cbor2

    key = chain.keys["alice"]
    body = {"to": chain.addr("bob").raw, "amount": 5}  # "to" sorts before "amount"
    fields = {"body": body, "chain": "bcai-test-1", "fee": 1, "kind": "transfer", "nonce": 0,
              "sender": key.public_key.raw}
    if where == "payload":
        fields = dict(reversed(list(fields.items())))
        fields["body"] = dict(sorted(body.items(), key=lambda kv: (len(kv[0]), kv[0])))
    payload = cbor2.dumps(fields)  # plain mode keeps the given (wrong) order
    assert payload != encode(fields)
    chain.reject(cbor2.dumps([payload, key.sign("tx", "bcai-test-1", payload)]), error=MalformedTransaction)


def test_invalid_non_canonical_integer_in_payload(chain):
    raw = chain.sign("alice", Transfer(chain.addr("bob"), 5))
    payload, _ = decode(raw)
    wide = payload.replace(b"\x66amount\x05", b"\x66amount\x18\x05")  # 5 as a one-byte-head integer
    assert wide != payload
    key = chain.keys["alice"]
    chain.reject(encode([wide, key.sign("tx", "bcai-test-1", wide)]), error=MalformedTransaction)


def test_decoded_addresses_equal_checked_ones(chain):
    tx = decode_tx(chain.sign("alice", Transfer(chain.addr("bob"), 42)), 1 << 16)
    assert tx.sender_address == chain.keys["alice"].public_key.address == chain.addr("alice")
    assert tx.body.to == chain.addr("bob") and hash(tx.body.to) == hash(chain.addr("bob"))
    assert str(tx.sender_address) == str(chain.addr("alice"))


@pytest.mark.parametrize("value", [2**70, -(2**70), 1.5, "x", None], ids=["bignum", "neg_bignum", "float", "text",
                                                                           "null"])
def test_invalid_metric_values(chain, value):
    import cbor2

    body = {"job_id": b"\x00" * 32, "metrics": {"loss": value}, "model_cid": Cid.of(b"m").to_bytes(),
            "samples_processed": 1}
    key = chain.keys["alice"]
    fields = {"fee": 1, "body": dict(sorted(body.items(), key=lambda kv: (len(kv[0]), kv[0]))), "kind": "submit_result",
              "chain": "bcai-test-1", "nonce": 0, "sender": key.public_key.raw}
    payload = cbor2.dumps(fields)  # cbor2 writes bignums as tag 2/3, which the value model forbids
    chain.reject(cbor2.dumps([payload, key.sign("tx", "bcai-test-1", payload)]), error=MalformedTransaction)


def test_transfer_fast_decoder_matches_generic_one(chain):
    from bcai.ledger.tx import _decode_fields, decode_body

    value = {"to": chain.addr("bob").raw, "amount": 77}
    assert decode_body("transfer", value) == _decode_fields(Transfer, value) == Transfer(chain.addr("bob"), 77)
