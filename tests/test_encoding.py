"""Canonical CBOR: byte-exact vectors (RFC 8949 Appendix A), round trips, rejections."""

import pytest
from hypothesis import given, strategies as st

from bcai.encoding import MAX_INT, MIN_INT, decode, encode
from bcai.errors import MalformedEncoding, NonCanonicalEncoding, UnencodableValue

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
    with pytest.raises((NonCanonicalEncoding, MalformedEncoding)):
        decode(bytes.fromhex("a2616101616102"))


def test_invalid_trailing_bytes_rejected():
    with pytest.raises((NonCanonicalEncoding, MalformedEncoding)):
        decode(bytes.fromhex("0000"))


def test_invalid_deep_nesting_rejected():
    with pytest.raises(MalformedEncoding):
        decode(b"\x81" * 100_000 + b"\x00")


@pytest.mark.parametrize("value", [1.5, {1, 2}, 2**64, MIN_INT - 1, {"a": 1, 2: 3}, {-1: 0}, object()])
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
