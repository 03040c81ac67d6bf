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
canonical mode); decoding parses with cbor2, checks the value model, then re-encodes and
requires the same bytes: any non-shortest head, unsorted or duplicate key, indefinite
length or tag is rejected with `NonCanonicalEncoding`.
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
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes) -> Any:
    """Decode canonical CBOR bytes; reject anything that is not the canonical form."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedEncoding(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types (decode, value, overflow...)
        raise MalformedEncoding(f"not valid CBOR: {exc}") from None
    problem = _find_problem(value, 0)
    if problem is not None:
        raise MalformedEncoding(problem)
    if cbor2.dumps(value, canonical=True) != data:
        raise NonCanonicalEncoding("bytes are not the canonical encoding of their value")
    return value


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
