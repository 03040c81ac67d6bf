"""SHA-256 ids, CIDv1, ed25519 signatures with domain and chain id, Merkle proofs, sealed boxes."""

import hashlib
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, strategies as st

from bcai.crypto import (
    BLAKE3, CODEC_DAG_CBOR, CODEC_RAW, SHA2_256, Address, Cid, MerkleProof, PrivateKey, PublicKey, compute_merkle_proof,
    compute_merkle_root, open_sealed, seal, sha256, signing_bytes, verify_merkle_proof,
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
# (content, codec, multihash, CID string), each made by two independent libraries
# (multiformats 0.3 and py-cid 0.5 / py-multihash 3.0), which agree.
THIRD_PARTY_CIDS = [
    (b"", CODEC_RAW, BLAKE3, "bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi"),
    (b"hello world", CODEC_RAW, BLAKE3, "bafkr4igxjga67jykbseaxdmmdgc5a5o3zp3htom2l6mrjznk7fvyggu6eq"),
    (b"bcai", CODEC_RAW, SHA2_256, "bafkreicn2sotbrhlstcpvcxse76xitd7kxhdo56i2xwvoykzudkgwcr7zi"),
    (b"\xa0", CODEC_DAG_CBOR, SHA2_256, "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"),  # {}
    (b"\xa0", CODEC_DAG_CBOR, BLAKE3, "bafyr4ia7stf7ge5tzyrsk6tskhva7sk2erkw5jqr4t4pi5pfjglrxlw3ai"),
    (b"\xa1\x61\x61\x01", CODEC_DAG_CBOR, SHA2_256, "bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey"),
]


def test_sha256_known_value():
    assert sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(("content", "text"), KNOWN_CIDS.items())
def test_cid_matches_ipfs(content, text):
    cid = Cid.of(content)
    assert str(cid) == text
    assert Cid.parse(text) == cid
    assert Cid.from_bytes(cid.to_bytes()) == cid
    cid.check(content)


@pytest.mark.parametrize(("content", "codec", "code", "text"), THIRD_PARTY_CIDS)
def test_cid_matches_third_party_vectors(content, codec, code, text):
    cid = Cid.of(content, codec, code)
    assert str(cid) == text
    assert Cid.parse(text) == cid and Cid.from_bytes(cid.to_bytes()) == cid
    assert (cid.codec, cid.multihash) == (codec, code)


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
    bytes([0x81, 0x00, 0x55, 0x12, 0x20]),  # version 1 as an overlong varint
    bytes([0x01, 0xd5, 0x00, 0x12, 0x20]),  # raw codec as an overlong varint
    bytes([0x01, 0x55, 0x92, 0x00, 0x20]),  # sha2-256 code as an overlong varint
    bytes([0x01, 0x55, 0x12, 0x1f]),  # a 31-byte digest length (and digest)
    bytes([0x12, 0x20]),  # CIDv0: a bare sha2-256 multihash
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
    # the empty raw CID in other multibases (base58btc, base16, base32 upper, base64; made
    # by multiformats), padded, with a stray byte, and as CIDv0
    "zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW",
    "f01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU",
    "mAVUSIOOwxEKY/BwUmvv0yJlvuSQnrkHkZJuTTKSVmRt4UrhV",
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku====",  # base32 padding
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\n",
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk\u0131",  # dotless i: "I" upper-cased
    "bciqohmgeikmpyhautl57jsezn64sij5oihsgjg4tjssjlgi3pbjlqvi",  # its CIDv0 bytes in base32
    "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",  # its CIDv0
])
def test_invalid_cid_strings_rejected(text):
    with pytest.raises(InvalidCid):
        Cid.parse(text)


@pytest.mark.parametrize("data", ["x" * 36, None, 36, [0] * 36])
def test_invalid_binary_cid_types_rejected(data):
    with pytest.raises(InvalidCid):
        Cid.from_bytes(data)


@pytest.mark.parametrize("digest", ["x" * 32, [0] * 32, bytearray(32), bytes(31), bytes(33)])
def test_invalid_cid_digest_rejected(digest):
    with pytest.raises(InvalidCid):
        Cid(CODEC_RAW, digest)


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


# RFC 8032 section 7.1 (seed, public key, message, signature); TEST 1024 left out for length.
RFC8032_VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     hashlib.sha512(b"abc").hexdigest(),
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
]
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493  # L, RFC 8032 section 5.1


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_ed25519_rfc8032_vectors(seed, public, message, signature):
    """Every bcai signature is domain-separated, so the RFC's raw-message signatures go
    through an independent Ed25519 (OpenSSL, via cryptography); ours must be that same
    pure Ed25519 of `signing_bytes`, from the same key."""
    key = PrivateKey(bytes.fromhex(seed))
    assert key.public_key.raw.hex() == public
    reference = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    assert reference.sign(bytes.fromhex(message)).hex() == signature
    assert key.sign("tx", "bcai-test-1", b"m") == reference.sign(signing_bytes("tx", "bcai-test-1", b"m"))


def test_signature_domain_format_vector():
    """The signed bytes and one signature pinned: changing the domain format breaks every key's history."""
    assert signing_bytes("tx", "bcai-test-1", b"hello") == b"bcai/tx\x00bcai-test-1\x00hello"
    key = PrivateKey(bytes.fromhex(RFC8032_VECTORS[0][0]))
    assert key.sign("tx", "bcai-test-1", b"hello").hex() == (
        "2f75af3ebca8b1420586caab73cd8ba60c57074ea498edce59ddd4daa3e88949"
        "215bc3e6aa9af9226a73fd6afa8794da8266d5c7064f8ed9f630187fdf0eac0c")


def test_invalid_signature_with_non_canonical_s():
    key = PrivateKey.from_label("alice")
    sig = key.sign("tx", "c", b"m")
    s = int.from_bytes(sig[32:], "little")
    for bad_s in (s + ED25519_ORDER, ED25519_ORDER, 2**256 - 1):
        with pytest.raises(InvalidSignature):
            key.public_key.verify("tx", "c", b"m", sig[:32] + bad_s.to_bytes(32, "little"))


SMALL_ORDER_POINTS = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # identity, y = p + 1
]


@pytest.mark.parametrize("point", SMALL_ORDER_POINTS)
def test_invalid_small_order_public_key_never_verifies(point):
    """With a small-order key A, R = identity and S = 0 satisfy [S]B = R + [k]A for many
    messages (for A = identity, every one): libsodium refuses such keys, and so must we."""
    key = PublicKey(bytes.fromhex(point))
    identity_r_zero_s = bytes.fromhex(SMALL_ORDER_POINTS[0]) + bytes(32)
    for message in (b"", b"m", b"pay me"):
        with pytest.raises(InvalidSignature):
            key.verify("tx", "c", message, identity_r_zero_s)


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


def test_a_key_write_that_fails_halfway_leaves_no_key_file(tmp_path, monkeypatch):
    """A Ctrl-C or a full disk while a key is written used to leave a truncated NAME.json
    that every later `create` of the name refused; now the name appears whole or not at all."""
    import bcai.crypto.keystore as keystore_module

    store = KeyStore(tmp_path)
    real_fsync = os.fsync

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keystore_module.os, "fsync", disk_full)
    with pytest.raises(OSError):
        store.create("alice")
    monkeypatch.setattr(keystore_module.os, "fsync", real_fsync)
    assert list((tmp_path / "keys").iterdir()) == []  # no key, no temp file
    key = store.create("alice")
    assert store.load("alice").seed == key.seed
    assert store.names() == ["alice"]


def test_keystore_never_replaces_a_key_even_when_it_appears_mid_create(tmp_path, monkeypatch):
    import bcai.crypto.keystore as keystore_module

    store = KeyStore(tmp_path)
    first = store.create("bob")
    path = tmp_path / "keys" / "bob.json"
    original = path.read_bytes()
    monkeypatch.setattr(keystore_module.Path, "exists", lambda self: False)  # the race: checked before it existed
    with pytest.raises(KeyStoreError, match="already exists"):
        store.create("bob")
    monkeypatch.undo()
    assert path.read_bytes() == original and store.load("bob").seed == first.seed
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["bob.json"]


def test_invalid_keystore_corrupt_file(tmp_path):
    store = KeyStore(tmp_path)
    store.create("k")
    path = tmp_path / "keys" / "k.json"
    path.write_text("{not json")
    with pytest.raises(InvalidKey):
        store.load("k")
