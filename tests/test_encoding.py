"""Canonical CBOR: byte-exact vectors (RFC 8949 Appendix A), round trips, rejections."""

import random
import tracemalloc

import cbor2
import pytest
from hypothesis import given, strategies as st

from bcai.encoding import MAX_INT, MIN_INT, decode, encode
from bcai.errors import EncodingError, MalformedEncoding, NonCanonicalEncoding, UnencodableValue

# (value, canonical hex) -- from RFC 8949 Appendix A, the deterministic subset.
VECTORS = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ('"\\', "62225c"), ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"), ("\U00010151", "64f0908591"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    ({"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}, "a56161614161626142616361436164614461656145"),
]


@pytest.mark.parametrize(("value", "hexstr"), VECTORS)
def test_vectors_encode_byte_exact(value, hexstr):
    assert encode(value).hex() == hexstr
    assert decode(bytes.fromhex(hexstr)) == value


def test_map_keys_sorted_regardless_of_insertion_order():
    assert encode({"bb": 1, "a": 2, "c": 3}) == encode({"c": 3, "a": 2, "bb": 1})
    assert encode({"bb": 1, "a": 2, "c": 3}).hex() == "a3616102616303626262" "01"


def test_tuples_encode_as_arrays():
    assert encode((1, 2)) == encode([1, 2])


NON_CANONICAL = {
    "23 in a two-byte head": "1817",
    "0 in a nine-byte head": "1b0000000000000000",
    "255 in a three-byte head": "1900ff",
    "65535 in a five-byte head": "1a0000ffff",
    "2**32-1 in a nine-byte head": "1b00000000ffffffff",
    "-24 in a two-byte head": "3817",
    "-256 in a three-byte head": "3900ff",
    "empty bytes, long length": "5800",
    "text, long length": "780161",
    "empty array, long length": "9900" "00",
    "empty map, long length": "ba00000000",
    "indefinite text": "7f6161ff",
    "indefinite map": "bf616101ff",
    "unsorted int keys": "a203040102",
    "unsorted byte keys": "a2410201410101",
    "indefinite array": "9f01ff",
    "indefinite bytes": "5f4101ff",
    "unsorted keys": "a2616201616101",
    "length-first violation": "a2626161016162" "02",
}
MALFORMED = {
    "float 1.0 (half)": "f93c00",
    "float 1.5 (double)": "fb3ff8000000000000",
    "bignum tag": "c249010000000000000000",
    "date tag": "c074323031332d30332d32315432303a30343a30305a",
    "undefined": "f7",
    "simple value": "f0",
    "truncated head": "1a0000",
    "truncated string": "6461",
    "empty input": "",
    "mixed key kinds": "a201016161" "02",
    "negative int key": "a12001",
    "invalid utf-8": "62c328",
}


@pytest.mark.parametrize("hexstr", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_invalid_non_canonical_rejected(hexstr):
    with pytest.raises(NonCanonicalEncoding):
        decode(bytes.fromhex(hexstr))


@pytest.mark.parametrize("hexstr", MALFORMED.values(), ids=MALFORMED.keys())
def test_invalid_malformed_rejected(hexstr):
    with pytest.raises(MalformedEncoding):
        decode(bytes.fromhex(hexstr))


def test_invalid_duplicate_key_rejected():
    with pytest.raises(NonCanonicalEncoding, match="duplicate"):
        decode(bytes.fromhex("a2616101616102"))


def test_invalid_trailing_bytes_rejected():
    with pytest.raises(MalformedEncoding, match="trailing"):
        decode(bytes.fromhex("0000"))


def test_invalid_deep_nesting_rejected():
    with pytest.raises(MalformedEncoding):
        decode(b"\x81" * 100_000 + b"\x00")


@pytest.mark.parametrize("value", [1.5, {1, 2}, 2**64, MIN_INT - 1, {"a": 1, 2: 3}, {-1: 0}, object(),
                                   "\ud800", {"\udc00": 1}, [b"", "a\udfffb"]])  # lone surrogates: not UTF-8
def test_invalid_values_refused_on_encode(value):
    with pytest.raises(UnencodableValue):
        encode(value)


def test_decode_requires_bytes():
    with pytest.raises(MalformedEncoding):
        decode("00")  # type: ignore[arg-type]


values = st.recursive(
    st.none() | st.booleans() | st.integers(MIN_INT, MAX_INT) | st.binary(max_size=40) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5)
    | st.dictionaries(st.binary(max_size=8), children, max_size=5)
    | st.dictionaries(st.integers(0, MAX_INT), children, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip_property(value):
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_fail_cleanly(data):
    try:
        value = decode(data)
    except (MalformedEncoding, NonCanonicalEncoding):
        return
    assert encode(value) == data


# RFC 8949 Appendix A examples outside the value model (floats, simple values, tags,
# bignums, indefinite lengths): each is refused, never accepted in another form.
RFC_APPENDIX_A_REFUSED = {
    MalformedEncoding: [
        "c249010000000000000000", "c349010000000000000000",  # +-2**64 as bignums
        "f90000", "f98000", "f93c00", "fb3ff199999999999a", "f93e00", "f97bff", "fa47c35000",
        "fa7f7fffff", "fb7e37e43c8800759c", "f90001", "f90400", "f9c400", "fbc010666666666666",
        "f97c00", "f97e00", "f9fc00", "fa7f800000", "fa7fc00000", "faff800000",
        "fb7ff0000000000000", "fb7ff8000000000000", "fbfff0000000000000",
        "f7", "f0", "f8ff",
        "c074323031332d30332d32315432303a30343a30305a", "c11a514b67b0", "c1fb41d452d9ec200000",
        "d74401020304", "d818456449455446", "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
    ],
    NonCanonicalEncoding: [
        "5f42010243030405ff", "7f657374726561646d696e67ff", "9fff", "9f018202039f0405ffff",
        "9f01820203820405ff", "83018202039f0405ff", "83019f0203ff820405",
        "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", "bf61610161629f0203ffff",
        "826161bf61626163ff", "bf6346756ef563416d7421ff",
    ],
}


@pytest.mark.parametrize(("error", "hexstr"), [(e, h) for e, hs in RFC_APPENDIX_A_REFUSED.items() for h in hs])
def test_rfc8949_appendix_a_outside_the_model_refused(error, hexstr):
    with pytest.raises(error):
        decode(bytes.fromhex(hexstr))


# RFC 8949 Appendix F.1: every example of a CBOR item that is not well-formed.
RFC_APPENDIX_F_NOT_WELL_FORMED = """
18 19 1a 1b 1901 1a0102 1b01020304050607 38 58 78 98 9a01ff00 b8 d8 f8 f900 fa0000 fb000000
41 61 5affffffff00 5bffffffffffffffff010203 7affffffff00 7b7fffffffffffffff010203
81 818181818181818181 8200 a1 a20102 a100 a2000000 c0 5f4100 7f6100
9f 9f0102 bf bf01020102 819f 9f8000 9f9f9f9f9fffffffff 9f819f819f9fffffff
1c 1d 1e 3c 3d 3e 5c 5d 5e 7c 7d 7e 9c 9d 9e bc bd be dc dd de fc fd fe
f800 f801 f818 f81f 5f00ff 5f21ff 5f6100ff 5f80ff 5fa0ff 5fc000ff 5fe0ff 7f4100ff
5f5f4100ffff 7f7f6100ffff ff 81ff 8200ff a1ff a1ff00 a100ff a20000ff 9f81ff
9f829f819f9fffffffff bf00ff bf000000ff 1f 3f df
""".split()


@pytest.mark.parametrize("hexstr", RFC_APPENDIX_F_NOT_WELL_FORMED)
def test_rfc8949_appendix_f_not_well_formed_refused(hexstr):
    with pytest.raises(EncodingError):
        decode(bytes.fromhex(hexstr))


@pytest.mark.parametrize(("value", "hexstr"), VECTORS)
def test_invalid_every_truncation_of_a_vector_refused(value, hexstr):
    data = bytes.fromhex(hexstr)
    for end in range(len(data)):
        with pytest.raises(MalformedEncoding):
            decode(data[:end])


@pytest.mark.parametrize("hexstr", ["5bffffffffffffffff", "7b7fffffffffffffff00", "5a7fffffff",
                                    "9bffffffffffffffff", "9a7fffffff00", "bbffffffffffffffff", "ba7fffffff0000"])
def test_invalid_length_past_the_input_refused_without_allocating_it(hexstr):
    tracemalloc.start()
    try:
        with pytest.raises(MalformedEncoding):
            decode(bytes.fromhex(hexstr))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def _shared_reference_bomb(levels: int) -> bytes:
    """Tags 28/29 (shared values): level k is [level k-1, a reference to level k-1].

    A few hundred bytes that describe a tree of 2**levels nodes; a decoder that accepted
    tags, then walked or re-encoded the value, would never finish.
    """
    item = b"\xd8\x1c" + encode([0])  # 28([0])
    for level in range(1, levels + 1):
        item = b"\xd8\x1c\x82" + item + b"\xd8\x1d" + encode(levels - level + 1)  # 28([item, 29(index)])
    return item


def test_invalid_shared_reference_bomb_refused_at_once():
    with pytest.raises(MalformedEncoding, match="tags"):
        decode(_shared_reference_bomb(60))


def _reference_encode(value) -> bytes:
    """RFC 8949 section 4.2.1 written out: shortest heads, map keys in bytewise order."""
    def head(major: int, argument: int) -> bytes:
        if argument < 24:
            return bytes([major << 5 | argument])
        # additional information 24, 25, 26, 27: the argument follows in 1, 2, 4, 8 bytes
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if argument < 2 ** (8 * size):
                return bytes([major << 5 | info]) + argument.to_bytes(size, "big")
        raise AssertionError(argument)

    if value is False or value is True or value is None:
        return {False: b"\xf4", True: b"\xf5", None: b"\xf6"}[value]
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        return head(3, len(value.encode())) + value.encode()
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(_reference_encode(item) for item in value)
    entries = sorted(_reference_encode(k) + _reference_encode(v) for k, v in value.items())
    return head(5, len(value)) + b"".join(entries)


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([False, True, None])
    if kind in (1, 2):  # integers around every head-size boundary, both signs
        bound = 2 ** rng.choice([5, 8, 16, 32, 64])
        return rng.choice([rng.randrange(bound), -rng.randrange(1, bound + 1), bound - 1, -bound])
    if kind == 3:
        return rng.randbytes(rng.choice([0, 1, 23, 24, 255, 256, 300]))
    if kind in (4, 5):
        return "".join(rng.choice("aZ0\u00fc\u6c34\U00010151") for _ in range(rng.choice([0, 1, 5, 24, 70])))
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 3, 24, 30]))]
    keys = rng.choice([lambda: rng.randrange(2**rng.choice([5, 8, 16, 64])),
                       lambda: rng.randbytes(rng.randrange(30)),
                       lambda: "".join(rng.choice("ab\u00fc") for _ in range(rng.randrange(30)))])
    return {keys(): _random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 5, 24, 30]))}


def test_encoding_matches_the_rfc_rules_and_cbor2_on_random_values():
    rng = random.Random(8949)
    for _ in range(1500):
        value = _random_value(rng)
        data = encode(value)
        assert data == _reference_encode(value)
        assert data == cbor2.dumps(value, canonical=True)
        assert cbor2.loads(data) == value
        assert decode(data) == value


def test_decode_agrees_with_cbor2_on_mutated_encodings():
    """A one-byte change to a canonical encoding is accepted exactly when cbor2 reads it as a
    value of our model whose canonical encoding is those very bytes."""
    rng = random.Random(7049)
    for _ in range(3000):
        data = bytearray(encode(_random_value(rng)))
        data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
        try:
            expected = cbor2.loads(data)
            canonical = encode(expected) == data
        except Exception:  # cbor2 raises several types, encode UnencodableValue
            canonical = False
        if canonical:
            assert decode(data) == expected
        else:
            with pytest.raises(EncodingError):
                decode(data)
