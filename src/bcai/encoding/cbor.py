"""Deterministic CBOR: the one encoding of every hashed or signed object.

The value model is deliberately small, so that one value has exactly one encoding and
every implementation can agree on it:

- integers in [-2**64, 2**64 - 1] (CBOR major types 0 and 1; no bignum tags),
- byte strings, UTF-8 text strings, booleans, null,
- arrays (Python lists or tuples; decoded as lists),
- maps (Python dicts) whose keys are all of one kind: all text, all bytes, or all
  non-negative integers. Within one kind, RFC 8949's bytewise order of encoded keys and
  RFC 7049's length-first order coincide, so the order is unambiguous.

No floats (consensus objects use fixed-point integers), no tags, no indefinite lengths,
no undefined/simple values. Encoding uses shortest-form heads and sorted keys (cbor2's
canonical mode). Decoding is this module's own strict reader of the value model: a head
longer than its shortest form, an unsorted or duplicate key, or an indefinite length is
`NonCanonicalEncoding`; a tag, float, simple value, bad UTF-8, truncated input, trailing
bytes or nesting deeper than `MAX_DEPTH` is `MalformedEncoding`.
"""

from __future__ import annotations

from typing import Any

import cbor2

from bcai.errors import MalformedEncoding, NonCanonicalEncoding, UnencodableValue

MAX_INT = 2**64 - 1
MIN_INT = -(2**64)
MAX_DEPTH = 64


def encode(value: Any) -> bytes:
    """Return the canonical CBOR bytes of `value` (raises `UnencodableValue`)."""
    problem = _find_problem(value, 0)
    if problem is not None:
        raise UnencodableValue(problem)
    try:
        return cbor2.dumps(value, canonical=True)
    except UnicodeEncodeError:  # checked here, not per string in _find_problem: one pass
        raise UnencodableValue("text with a lone surrogate is not UTF-8") from None


def decode(data: bytes) -> Any:
    """Decode canonical CBOR bytes; reject anything that is not the canonical form."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedEncoding(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    value, end = _decode_item(data, 0, 0)
    if end != len(data):
        raise MalformedEncoding(f"{len(data) - end} trailing bytes after the encoded value")
    return value


# The decoder is written out here rather than delegated to a general CBOR library: a
# general decoder accepts tags, and tags 28/29 (shared values) let a few hundred bytes
# describe a tree with 2**60 nodes that any later walk or re-encoding would expand.
# This one reads only the value model, checks every rule while reading, and never
# builds a value from a length it has not checked against the bytes left.

_SIMPLE = {0xF4: False, 0xF5: True, 0xF6: None}
_SHORTEST = {1: 24, 2: 2**8, 4: 2**16, 8: 2**32}  # least argument each head size may carry


def _decode_long_head(data: bytes, pos: int) -> tuple[int, int]:
    """Return (argument, position after the head) of a head whose argument follows it."""
    initial = data[pos]
    info = initial & 0x1F
    if info == 31:
        raise NonCanonicalEncoding("indefinite-length items are not allowed")
    if info > 27:
        raise MalformedEncoding(f"initial byte 0x{initial:02x} is reserved")
    size = 1 << (info - 24)
    pos += 1
    if pos + size > len(data):
        raise MalformedEncoding("truncated input: a head is cut short")
    argument = int.from_bytes(data[pos:pos + size], "big")
    if argument < _SHORTEST[size]:
        raise NonCanonicalEncoding(f"{argument} is not in its shortest head")
    return argument, pos + size


def _decode_item(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Return the value at `pos` and the position after it."""
    if depth > MAX_DEPTH:
        raise MalformedEncoding(f"nesting deeper than {MAX_DEPTH}")
    if pos >= len(data):
        raise MalformedEncoding("truncated input: a data item is missing")
    initial = data[pos]
    major = initial >> 5
    if major >= 6:
        if initial in _SIMPLE:
            return _SIMPLE[initial], pos + 1
        if major == 6:
            raise MalformedEncoding("tags are not allowed in canonical objects")
        raise MalformedEncoding("floats, simple values and break codes are not allowed in canonical objects")
    if initial & 0x1F < 24:
        argument, pos = initial & 0x1F, pos + 1
    else:
        argument, pos = _decode_long_head(data, pos)
    if major == 0:
        return argument, pos
    if major == 1:
        return -1 - argument, pos
    if major <= 3:
        end = pos + argument
        if end > len(data):
            raise MalformedEncoding(f"string of {argument} bytes runs past the end of the input")
        if major == 2:
            return data[pos:end], end
        try:
            return data[pos:end].decode("utf-8"), end
        except UnicodeDecodeError:
            raise MalformedEncoding("text string is not valid UTF-8") from None
    if argument > len(data) - pos:  # every element takes at least one byte
        raise MalformedEncoding(f"{argument} elements cannot fit in the {len(data) - pos} bytes left")
    if major == 4:
        items = []
        for _ in range(argument):
            item, pos = _decode_item(data, pos, depth + 1)
            items.append(item)
        return items, pos
    return _decode_map(data, pos, argument, depth)


def _decode_map(data: bytes, pos: int, count: int, depth: int) -> tuple[dict[Any, Any], int]:
    """Return the map of `count` entries at `pos`, checking key kinds and canonical order."""
    result: dict[Any, Any] = {}
    key_kind: type | None = None
    previous = b""
    for _ in range(count):
        start = pos
        key, pos = _decode_item(data, pos, depth + 1)
        encoded_key = data[start:pos]
        kind = type(key)
        if kind not in (str, bytes, int) or (kind is int and key < 0):
            raise MalformedEncoding("map keys must be text, bytes or unsigned integers")
        if key_kind not in (None, kind):
            raise MalformedEncoding("map keys must all be of one kind (text, bytes or unsigned int)")
        if encoded_key == previous:
            raise NonCanonicalEncoding("duplicate map key")
        if encoded_key < previous:
            raise NonCanonicalEncoding("map keys are not in canonical (bytewise) order")
        key_kind, previous = kind, encoded_key
        result[key], pos = _decode_item(data, pos, depth + 1)
    return result, pos


def _find_problem(value: Any, depth: int) -> str | None:
    """Return why `value` is outside the value model, or None when it is inside."""
    if depth > MAX_DEPTH:
        return f"nesting deeper than {MAX_DEPTH}"
    kind = type(value)
    if kind is int:
        if MIN_INT <= value <= MAX_INT:
            return None
        return "integer out of the 64-bit CBOR range"
    if kind in (bytes, str, bool) or value is None:
        return None
    if kind is list or kind is tuple:
        for item in value:
            problem = _find_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    if kind is dict:
        key_kinds = {type(key) for key in value}
        if len(key_kinds) > 1:
            return "map keys must all be of one kind (text, bytes or unsigned int)"
        if key_kinds == {int} and any(key < 0 for key in value):
            return "integer map keys must be non-negative"
        if key_kinds - {str, bytes, int}:
            return f"map keys of type {next(iter(key_kinds)).__name__} are not allowed"
        for key, item in value.items():
            problem = _find_problem(key, depth + 1) or _find_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    if kind is float:
        return "floats are not allowed in canonical objects (use fixed-point integers)"
    return f"type {kind.__name__} is not in the canonical value model"
