"""The messages peers exchange inside encrypted frames, and their byte layout.

Every frame's plaintext starts with one kind byte. Control messages (hello, subscribe)
carry canonical CBOR; the data-heavy ones (publish, request, response) have a small binary
header followed by the payload as is, so a 1 MiB chunk is not re-encoded on its way.

    HELLO     0x01 cbor {"record": signed node record bytes, "topics": [str]}
    SUBSCRIBE 0x02 cbor [topic, subscribed: bool]
    PUBLISH   0x03 u8 len, topic, data
    REQUEST   0x04 u64 request id, u8 len, protocol, payload
    RESPONSE  0x05 u64 request id, u8 status (0 ok, 1 error), payload or utf-8 error text
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from bcai.encoding import decode, encode
from bcai.errors import BcaiError, MalformedMessage

HELLO, SUBSCRIBE, PUBLISH, REQUEST, RESPONSE = 1, 2, 3, 4, 5
_NAME = re.compile(r"[a-z0-9][a-z0-9_:/.\-]{0,95}")
_U64 = struct.Struct(">Q")
MAX_TOPICS = 1024


def is_valid_name(name: str) -> bool:
    """Topic and protocol names: 1-96 chars of a-z 0-9 _ : / . - (first a letter/digit); a job
    topic is `job/` + the 64 hex digits of the job id."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class Hello:
    record: bytes
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscribe:
    topic: str
    subscribed: bool


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Request:
    request_id: int
    protocol: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Response:
    request_id: int
    ok: bool
    payload: bytes


Message = Hello | Subscribe | Publish | Request | Response


def encode_message_parts(message: Message) -> tuple[bytes, bytes]:
    """(head, body): the payload travels as its own part so it is copied only once."""
    if isinstance(message, Publish):
        topic = message.topic.encode()
        return bytes([PUBLISH, len(topic)]) + topic, message.data
    if isinstance(message, Request):
        protocol = message.protocol.encode()
        return bytes([REQUEST]) + _U64.pack(message.request_id) + bytes([len(protocol)]) + protocol, message.payload
    if isinstance(message, Response):
        return bytes([RESPONSE]) + _U64.pack(message.request_id) + bytes([0 if message.ok else 1]), message.payload
    if isinstance(message, Hello):
        return bytes([HELLO]) + encode({"record": message.record, "topics": list(message.topics)}), b""
    return bytes([SUBSCRIBE]) + encode([message.topic, message.subscribed]), b""


def encode_message(message: Message) -> bytes:
    head, body = encode_message_parts(message)
    return head + body


def decode_message(frame: bytes | bytearray | memoryview) -> Message:
    """Parse one frame's plaintext; raise `MalformedMessage` on anything unexpected."""
    view = memoryview(frame)
    if not len(view):
        raise MalformedMessage("empty frame")
    kind = view[0]
    if kind == PUBLISH:
        topic = _name_at(view, 1)
        return Publish(topic, bytes(view[2 + len(topic) :]))
    if kind == REQUEST:
        if len(view) < 10:
            raise MalformedMessage("truncated request")
        protocol = _name_at(view, 9)
        return Request(_U64.unpack_from(view, 1)[0], protocol, bytes(view[10 + len(protocol) :]))
    if kind == RESPONSE:
        if len(view) < 10 or view[9] not in (0, 1):
            raise MalformedMessage("truncated or bad response")
        return Response(_U64.unpack_from(view, 1)[0], view[9] == 0, bytes(view[10:]))
    if kind in (HELLO, SUBSCRIBE):
        try:
            body = decode(bytes(view[1:]))
        except BcaiError as exc:
            raise MalformedMessage(f"undecodable control message: {exc}") from None
        if kind == HELLO:
            return _hello(body)
        if not (isinstance(body, list) and len(body) == 2 and is_valid_name(body[0]) and isinstance(body[1], bool)):
            raise MalformedMessage("subscribe is [topic, bool]")
        return Subscribe(body[0], body[1])
    raise MalformedMessage(f"unknown message kind {kind}")


def _name_at(view: memoryview, offset: int) -> str:
    if len(view) <= offset:
        raise MalformedMessage("truncated frame")
    length = view[offset]
    raw = bytes(view[offset + 1 : offset + 1 + length])
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMessage("name is not ascii") from None
    if len(raw) != length or not is_valid_name(name):
        raise MalformedMessage(f"bad topic or protocol name {raw!r}")
    return name


def _hello(body: object) -> Hello:
    if not isinstance(body, dict) or set(body) != {"record", "topics"}:
        raise MalformedMessage("hello is a map of record, topics")
    record, topics = body["record"], body["topics"]
    if not isinstance(record, bytes) or not isinstance(topics, list) or len(topics) > MAX_TOPICS:
        raise MalformedMessage("malformed hello")
    if not all(is_valid_name(t) for t in topics):
        raise MalformedMessage("bad topic name in hello")
    return Hello(record, tuple(topics))
