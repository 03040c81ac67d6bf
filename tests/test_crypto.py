"""SHA-256 ids, CIDv1, ed25519 signatures with domain and chain id, Merkle proofs, sealed boxes."""

import os
import stat

import pytest
from hypothesis import given, strategies as st

from bcai.crypto import (
    BLAKE3, CODEC_DAG_CBOR, SHA2_256, Address, Cid, MerkleProof, PrivateKey, PublicKey, compute_merkle_proof,
    compute_merkle_root, open_sealed, seal, sha256, verify_merkle_proof,
)
from bcai.crypto.keystore import KeyStore
from bcai.errors import (
    DecryptionFailed, InvalidCid, InvalidKey, InvalidMerkleProof, InvalidSignature, KeyStoreError,
)

# Known CID strings, as `ipfs add --cid-version 1 --raw-leaves` / `ipfs block put` print them.
KNOWN_CIDS = {
    b"hello world": "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
    b"": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
}


def test_sha256_known_value():
    assert sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(("content", "text"), KNOWN_CIDS.items())
def test_cid_matches_ipfs(content, text):
    cid = Cid.of(content)
    assert str(cid) == text
    assert Cid.parse(text) == cid
    assert Cid.from_bytes(cid.to_bytes()) == cid
    cid.check(content)


def test_cid_agrees_with_multiformats_library():
    from multiformats import CID, multihash

    for content in (b"x", b"bcai" * 1000, os.urandom(77)):
        for codec, name in ((0x55, "raw"), (CODEC_DAG_CBOR, "dag-cbor")):
            for code, hash_name in ((SHA2_256, "sha2-256"), (BLAKE3, "blake3")):
                theirs = CID("base32", 1, name, multihash.digest(content, hash_name, size=32))
                ours = Cid.of(content, codec, code)
                assert str(ours) == str(theirs) and ours.to_bytes() == bytes(theirs)
                assert Cid.parse(str(theirs)) == ours and ours.hash_name == hash_name


def test_blake3_cid_known_answer_and_no_confusion_between_hashes():
    # BLAKE3 of the empty input (the reference implementation's test vector)
    empty = Cid.of(b"", multihash=BLAKE3)
    assert empty.digest.hex() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert str(empty).startswith("bafkr4i") and Cid.from_bytes(empty.to_bytes()) == empty
    data = os.urandom(3000)
    b3, sha = Cid.of(data, multihash=BLAKE3), Cid.of(data)
    assert b3 != sha and b3.matches(data) and sha.matches(data)
    # a digest is only ever checked with the hash its CID names
    assert not Cid(b3.codec, sha.digest, BLAKE3).matches(data)
    assert not Cid(sha.codec, b3.digest, SHA2_256).matches(data)
    with pytest.raises(InvalidCid):
        b3.check(data + b"!")


@pytest.mark.parametrize("prefix", [
    bytes([0x01, 0x55, 0x13, 0x20]),  # sha2-512 code: not accepted
    bytes([0x01, 0x55, 0x1e, 0x40]),  # blake3 with a 64-byte digest length
    bytes([0x01, 0x70, 0x1e, 0x20]),  # dag-pb codec
    bytes([0x00, 0x55, 0x12, 0x20]),  # version 0 prefix
])
def test_unsupported_cid_prefixes_rejected(prefix):
    with pytest.raises(InvalidCid):
        Cid.from_bytes(prefix + bytes(32))
    with pytest.raises(InvalidCid):
        Cid(0x55, bytes(32), 0x13)


@pytest.mark.parametrize("text", [
    "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0 (base58)
    "BAFKREIFZJUT3TE2NHYEKKLSS27NH3K72YSCO7Y32KOAO5EEI66WOF36N5E",  # upper case
    "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5",  # truncated
    "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5f",  # stray trailing bits
    "b!!!!", "", "zabc",
])
def test_invalid_cid_strings_rejected(text):
    with pytest.raises(InvalidCid):
        Cid.parse(text)


def test_invalid_cid_content_mismatch():
    with pytest.raises(InvalidCid):
        Cid.of(b"a").check(b"b")


def test_signature_round_trip_and_domain_separation():
    key = PrivateKey.from_label("alice")
    sig = key.sign("tx", "bcai-test", b"payload")
    key.public_key.verify("tx", "bcai-test", b"payload", sig)
    for domain, chain, msg in [("vote", "bcai-test", b"payload"), ("tx", "other-chain", b"payload"),
                               ("tx", "bcai-test", b"payloaD")]:
        with pytest.raises(InvalidSignature):
            key.public_key.verify(domain, chain, msg, sig)


def test_invalid_signature_from_other_key_and_bad_lengths():
    alice, bob = PrivateKey.from_label("alice"), PrivateKey.from_label("bob")
    sig = alice.sign("tx", "c", b"m")
    with pytest.raises(InvalidSignature):
        bob.public_key.verify("tx", "c", b"m", sig)
    for bad in (sig[:-1], sig + b"\x00", b"", bytes(64)):
        with pytest.raises(InvalidSignature):
            alice.public_key.verify("tx", "c", b"m", bad)


def test_signature_domain_and_chain_id_must_be_plain_labels():
    key = PrivateKey.from_label("k")
    for domain, chain in [("", "c"), ("t\x00x", "c"), ("tx", "a b"), ("tx", "")]:
        with pytest.raises(ValueError):
            key.sign(domain, chain, b"m")


def test_address_derivation_and_parsing():
    key = PrivateKey.from_label("alice")
    addr = key.address
    assert addr.raw == sha256(key.public_key.raw)[:20]
    assert Address.parse(str(addr)) == addr
    for bad in ["", "bcai", "bcai" + "00" * 19, "bcai" + "AA" * 20, "xx" + "00" * 20, "bcai" + "zz" * 20]:
        with pytest.raises(InvalidKey):
            Address.parse(bad)
    with pytest.raises(InvalidKey):
        PublicKey(b"short")


@given(st.lists(st.binary(max_size=16), min_size=1, max_size=40), st.data())
def test_merkle_proofs_verify_for_every_leaf(leaves, data):
    root = compute_merkle_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = compute_merkle_proof(leaves, index)
    verify_merkle_proof(root, leaves[index], proof)


def test_merkle_rfc6962_shape():
    # Two leaves: root = H(1 || H(0||a) || H(0||b)); a leaf is never a node.
    a, b = b"a", b"b"
    expected = sha256(b"\x01" + sha256(b"\x00" + a) + sha256(b"\x00" + b))
    assert compute_merkle_root([a, b]) == expected
    assert compute_merkle_root([]) == sha256(b"")
    # Duplicating the last leaf changes the root (no CVE-2012-2459 ambiguity).
    assert compute_merkle_root([a, b, b]) != compute_merkle_root([a, b, b, b])


def test_invalid_merkle_proofs_rejected():
    leaves = [bytes([i]) for i in range(7)]
    root = compute_merkle_root(leaves)
    proof = compute_merkle_proof(leaves, 3)
    with pytest.raises(InvalidMerkleProof):
        verify_merkle_proof(root, b"other", proof)
    with pytest.raises(InvalidMerkleProof):
        verify_merkle_proof(root, leaves[3], MerkleProof(4, 7, proof.path))
    with pytest.raises(InvalidMerkleProof):
        verify_merkle_proof(root, leaves[3], MerkleProof(3, 7, proof.path[:-1]))
    with pytest.raises(InvalidMerkleProof):
        verify_merkle_proof(root, leaves[3], MerkleProof(9, 7, proof.path))


def test_sealed_box_only_opens_for_recipient():
    node, other = PrivateKey.from_label("node"), PrivateKey.from_label("other")
    box = seal(node.public_key, b"dataset key")
    assert open_sealed(node, box) == b"dataset key"
    with pytest.raises(DecryptionFailed):
        open_sealed(other, box)
    with pytest.raises(DecryptionFailed):
        open_sealed(node, box[:-1] + bytes([box[-1] ^ 1]))


def test_keystore_files_are_private(tmp_path):
    store = KeyStore(tmp_path)
    key = store.create("alice")
    path = tmp_path / "keys" / "alice.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.load("alice").seed == key.seed
    assert store.names() == ["alice"]
    with pytest.raises(KeyStoreError):
        store.create("alice")
    with pytest.raises(KeyStoreError):
        store.create("../evil")
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError):
        store.load("alice")


def test_invalid_keystore_corrupt_file(tmp_path):
    store = KeyStore(tmp_path)
    store.create("k")
    path = tmp_path / "keys" / "k.json"
    path.write_text("{not json")
    with pytest.raises(InvalidKey):
        store.load("k")
