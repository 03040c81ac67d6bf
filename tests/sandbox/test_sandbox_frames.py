"""The tensor wire format: round trips, and every malformed frame refused."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bcai.encoding import encode
from bcai.sandbox.python.frames import MAGIC, MAX_HEADER_ITEMS, MAX_NDIM, MAX_TENSORS, FrameError, decode_frame, encode_frame

DTYPES = st.sampled_from(["bool", "int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64", "complex64"])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))
def test_round_trip(array):
    frame = decode_frame(encode_frame({"status": "ok"}, {"a": array}))
    assert frame.header == {"status": "ok"}
    out = frame.tensors["a"]
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes() == np.ascontiguousarray(array).tobytes()


def _frame(header: object, payload: bytes = b"") -> bytes:
    head = encode(header)
    return struct.pack(">4sI", MAGIC, len(head)) + head + payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"BCS",
        b"XXXX\x00\x00\x00\x00",
        struct.pack(">4sI", MAGIC, 1 << 30),
        struct.pack(">4sI", MAGIC, 3) + b"\xff\xff\xff",
        _frame({"status": "ok"}),
        _frame({"tensors": "no"}),
        _frame({"tensors": [["x", "|O", [1], 8]]}, b"\0" * 8),
        _frame({"tensors": [["x", "<f4", [2], 4]]}, b"\0" * 4),
        _frame({"tensors": [["x", "<f4", [-1], 4]]}, b"\0" * 4),
        _frame({"tensors": [["x", "<f4", [1], 4]]}, b"\0" * 2),
        _frame({"tensors": [["x", "<f4", [1], 4]]}, b"\0" * 8),
        _frame({"tensors": [["../x", "<f4", [1], 4]]}, b"\0" * 4),
        _frame({"tensors": [["x", "<f4", [1], 4], ["x", "<f4", [1], 4]]}, b"\0" * 8),
        _frame({"tensors": [["x", "<f4", [True], 4]]}, b"\0" * 4),
        _frame({"tensors": [["x", "<f4"]]}),
        # empty (0 bytes) but past numpy's size bound: numpy's ValueError once escaped
        # decode_frame, and with it PythonSandbox.run, into the node
        _frame({"tensors": [["x", "<f8", [0, 1 << 40, 1 << 40, 1 << 40], 0]]}),
        _frame({"tensors": [["x", "<f8", [0, (1 << 63) - 1], 0]]}),
        # an unhashable dtype: TypeError from the set lookup escaped decode_frame
        _frame({"tensors": [["x", ["<f4"], [1], 4]]}, b"\0" * 4),
        _frame({"tensors": [["x", {"a": 1}, [1], 4]]}, b"\0" * 4),
        _frame({1: 2}),
        _frame([1, 2]),
    ],
)
def test_invalid_frames_are_refused(data):
    with pytest.raises(FrameError):
        decode_frame(data)


def test_an_empty_tensor_with_the_largest_numpy_shape_still_decodes():
    frame = decode_frame(_frame({"tensors": [["x", "|u1", [0, (1 << 63) - 1], 0]]}))
    assert frame.tensors["x"].shape == (0, (1 << 63) - 1)


def test_the_largest_legitimate_header_fits_the_item_budget():
    tensors = {f"t{i}": np.zeros((1,) * MAX_NDIM, dtype=np.uint8) for i in range(MAX_TENSORS)}
    frame = decode_frame(encode_frame({"status": "ok", "log": "x" * 1000}, tensors))
    assert len(frame.tensors) == MAX_TENSORS


@pytest.mark.parametrize(
    "head",
    [
        b"\x9a" + (MAX_HEADER_ITEMS).to_bytes(4, "big") + b"\xa0" * MAX_HEADER_ITEMS,  # one item too many
        b"\xa1\x63log\x9f\xff",  # indefinite length
        b"\x9a\xff\xff\xff\xff",  # claims 4 billion items, holds none
        b"\xbb" + b"\xff" * 8,  # a map claiming 2**64 - 1 entries
        b"\xa1\x63log\xd8\x23\x63(a)",  # tag 35: cbor2 compiles it as a regular expression
        b"\xa1\x63log\xd8\x24\x60",  # tag 36: cbor2 parses it as a MIME message
    ],
)
def test_headers_past_the_item_budget_or_with_tags_are_refused_before_decoding(head):
    with pytest.raises(FrameError):
        decode_frame(struct.pack(">4sI", MAGIC, len(head)) + head)


def test_invalid_tensors_cannot_be_encoded():
    with pytest.raises(FrameError):
        encode_frame({}, {"x": np.array([object()], dtype=object)})
    with pytest.raises(FrameError):
        encode_frame({}, {"not valid": np.zeros(1)})
    with pytest.raises(FrameError):
        encode_frame({"tensors": 1}, {})
