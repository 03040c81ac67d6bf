"""The wire format between the bridge and its child: named tensors as raw bytes.

A frame is `b"BCSB" | u32 big-endian header length | header | payload`. The header is
canonical CBOR (`bcai.encoding`): a map with a `"tensors"` list of
`[name, dtype, shape, nbytes]` entries plus whatever else the message carries (code,
constraints, status, log). The payload is the tensors' raw C-order bytes, concatenated in
header order. No pickle, no object dtype: the parent decodes frames from untrusted code,
so `decode_frame` checks every length, name, dtype and shape before it builds an array.

Pure: bytes in, values out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from bcai.encoding import decode, encode

MAGIC = b"BCSB"
_PREFIX = struct.Struct(">4sI")
#: Largest header a frame may carry (code, names, shapes, log). Payload is capped apart.
MAX_HEADER_BYTES = 4 * 1024 * 1024
MAX_TENSORS = 1024
#: Largest number of CBOR data items a header may hold: MAX_TENSORS entries of
#: [name, dtype, shape of MAX_NDIM sizes, nbytes] plus the other fields, with room to
#: spare. Checked by a scan before decoding (`check_header_items`): 4 MiB of empty maps
#: took the canonical decoder 12 s (GIL held) and 290 MB in the node, after the job had
#: ended.
MAX_HEADER_ITEMS = 65536
MAX_NAME_LENGTH = 128
#: Longest error message a result frame carries (the bridge cuts a forged longer one).
MAX_MESSAGE_CHARS = 2000
MAX_NDIM = 32
#: numpy's bound on an array's byte size, which it applies to the non-zero dimensions
#: even when another dimension is 0 (an empty array of shape (0, 2**40, 2**40, 2**40)
#: raises ValueError in numpy, not in our checks).
MAX_ARRAY_BYTES = (1 << 63) - 1

#: dtypes that may cross the boundary (little-endian, fixed size, no objects).
ALLOWED_DTYPES = frozenset(
    {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8", "<c8", "<c16"}
)


class FrameError(ValueError):
    """Raised when bytes are not a well-formed frame (the caller maps it to output_invalid)."""


@dataclass(frozen=True)
class Frame:
    header: Mapping[str, Any]
    tensors: Mapping[str, np.ndarray]


def compute_dtype_str(array: np.ndarray) -> str:
    dtype = array.dtype
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False):
        dtype = dtype.newbyteorder("<")
    return dtype.str


def encode_frame(header: Mapping[str, Any], tensors: Mapping[str, Any]) -> bytes:
    """Frame `header` (CBOR-encodable, no `"tensors"` key) and `tensors` (array-likes)."""
    if "tensors" in header:
        raise FrameError("header may not carry a 'tensors' key")
    entries: list[list[Any]] = []
    chunks: list[bytes] = []
    for name, value in tensors.items():
        if not isinstance(name, str) or not is_valid_name(name):
            raise FrameError(f"tensor name {name!r} is not a short identifier")
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise FrameError(f"tensor {name!r} has dtype {array.dtype}, not a numeric or bool dtype")
        array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
        dtype = compute_dtype_str(array)
        if dtype not in ALLOWED_DTYPES:
            raise FrameError(f"tensor {name!r} has dtype {dtype}, which cannot cross the boundary")
        data = array.tobytes()
        entries.append([name, dtype, [int(d) for d in array.shape], len(data)])
        chunks.append(data)
    head = encode({**header, "tensors": entries})
    return _PREFIX.pack(MAGIC, len(head)) + head + b"".join(chunks)


def is_valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME_LENGTH and name.isidentifier() and name.isascii()


def decode_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Parse a frame from an untrusted source; raise `FrameError` on anything off."""
    view = memoryview(data)
    if len(view) < _PREFIX.size:
        raise FrameError("frame shorter than its prefix")
    magic, head_len = _PREFIX.unpack(view[: _PREFIX.size])
    if magic != MAGIC:
        raise FrameError("frame does not start with the magic bytes")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(view):
        raise FrameError("frame header length out of range")
    check_header_items(view[_PREFIX.size : _PREFIX.size + head_len], MAX_HEADER_ITEMS)
    try:
        header = decode(bytes(view[_PREFIX.size : _PREFIX.size + head_len]))
    except Exception as exc:  # the strict CBOR decoder's errors, whatever they are
        raise FrameError(f"frame header is not canonical CBOR: {exc}") from None
    if not isinstance(header, dict) or not all(isinstance(k, str) for k in header):
        raise FrameError("frame header is not a map with text keys")
    entries = header.pop("tensors", None)
    if not isinstance(entries, list) or len(entries) > MAX_TENSORS:
        raise FrameError("frame header has no valid 'tensors' list")
    offset = _PREFIX.size + head_len
    tensors: dict[str, np.ndarray] = {}
    for entry in entries:
        name, array, offset = _decode_tensor(entry, view, offset)
        if name in tensors:
            raise FrameError(f"tensor {name!r} appears twice")
        tensors[name] = array
    if offset != len(view):
        raise FrameError(f"frame has {len(view) - offset} trailing bytes")
    return Frame(header, tensors)


_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


def check_header_items(head: memoryview, limit: int) -> None:
    """Raise FrameError when the CBOR in `head` holds more than `limit` data items or
    any tag.

    Walks item heads only (a string's bytes are skipped, not read), so it costs at most
    `limit` steps whatever the header's size. Tags are outside the value model, and
    cbor2 decodes some before anything can refuse them: a 2 MB MIME message (tag 36)
    took 7 s to parse, a 1 MB regular expression (tag 35) 4 s to compile. Indefinite
    lengths (never canonical) and reserved encodings are refused too; the rest is left
    to the decoder.
    """
    pos, pending, count = 0, 1, 0
    while pending:
        if pos >= len(head):
            raise FrameError("frame header ends inside a CBOR item")
        initial = head[pos]
        major, info = initial >> 5, initial & 31
        pos += 1
        if info < 24:
            argument = info
        elif info in _ARGUMENT_BYTES:
            size = _ARGUMENT_BYTES[info]
            argument = int.from_bytes(head[pos : pos + size], "big")
            pos += size
        else:
            raise FrameError("frame header uses an indefinite or reserved CBOR encoding")
        pending -= 1
        count += 1
        if count > limit:
            raise FrameError(f"frame header holds more than {limit} CBOR items")
        if major in (2, 3):  # byte and text strings
            pos += argument
        elif major == 4:  # array
            pending += argument
        elif major == 5:  # map
            pending += 2 * argument
        elif major == 6:
            raise FrameError(f"frame header carries CBOR tag {argument}")


def _decode_tensor(entry: Any, view: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(entry, list) or len(entry) != 4:
        raise FrameError("tensor entry is not [name, dtype, shape, nbytes]")
    name, dtype, shape, nbytes = entry
    if not isinstance(name, str) or not is_valid_name(name):
        raise FrameError(f"tensor name {name!r} is not a short identifier")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:  # a list is unhashable: TypeError
        raise FrameError(f"tensor {name!r}: dtype {dtype!r} is not allowed")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise FrameError(f"tensor {name!r}: shape {shape!r} is not a list of sizes")
    expected = spanned = np.dtype(dtype).itemsize
    for d in shape:
        expected *= d
        spanned *= d or 1
    if spanned > MAX_ARRAY_BYTES:
        raise FrameError(f"tensor {name!r}: shape {shape} is too big for any array, even an empty one")
    if not isinstance(nbytes, int) or nbytes != expected:
        raise FrameError(f"tensor {name!r}: {nbytes!r} bytes do not match shape {shape} of {dtype}")
    if offset + nbytes > len(view):
        raise FrameError(f"tensor {name!r}: frame ends before its {nbytes} bytes")
    array = np.frombuffer(view[offset : offset + nbytes], dtype=np.dtype(dtype)).reshape(shape).copy()
    return name, array, offset + nbytes
