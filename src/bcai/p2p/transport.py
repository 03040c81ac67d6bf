"""The transport plugin interface: raw duplex byte streams between addresses.

A `Transport` only moves bytes; the authenticated encryption (`secure.py`) runs on top of
any `ByteStream`, so TCP (`tcp.py`) and the in-memory network (`memory.py`) share every
line of handshake, framing, scoring and gossip code, and one test suite runs on both.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any


class ByteStream(ABC):
    """One direction-pair of bytes to a remote endpoint."""

    remote_address: str

    @abstractmethod
    async def read_exactly(self, n: int) -> bytearray:
        """Exactly `n` bytes in a new buffer the caller owns (it may decrypt in place), or
        raise `ConnectionClosed` when the stream ends first."""

    @abstractmethod
    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data`; waits while the stream's buffer is full (backpressure)."""

    @abstractmethod
    def close(self) -> None:
        """Close both directions (idempotent)."""

    @property
    @abstractmethod
    def is_closed(self) -> bool: ...


StreamHandler = Callable[[ByteStream], Coroutine[Any, Any, None]]


class Transport(ABC):
    @abstractmethod
    async def listen(self, address: str, on_stream: StreamHandler) -> str:
        """Accept streams at `address` ("host:port"; port 0 picks one); return the bound address."""

    @abstractmethod
    async def dial(self, address: str) -> ByteStream:
        """Open a stream to `address`; raise `ConnectionClosed` if nobody listens there."""

    @abstractmethod
    async def close(self) -> None:
        """Stop listening (open streams stay with their owners)."""

    @property
    @abstractmethod
    def connection_bytes(self) -> int:
        """The most one open stream holds in buffers (kernel and our own), whatever the
        remote end does: what the host charges each connection to its budget."""


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {address!r}")
    return host.strip("[]"), int(port)


def get_remote_host(address: str) -> str:
    """The host part of a stream's remote address ("1.2.3.4:5678" -> "1.2.3.4"), what
    per-source limits count by; an address without a port is its own host."""
    host, sep, _ = address.rpartition(":")
    return host.strip("[]") if sep else address


def compute_host_key(address: str) -> str:
    """The machine an address ("host:port") names, spelt one way: per-host limits count by
    it. IP addresses are normalised (an IPv4-mapped IPv6 address is its IPv4 address),
    names are lower-cased without a trailing dot."""
    host = get_remote_host(address)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host.lower().rstrip(".")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or "localhost"."""
    key = compute_host_key(f"{host}:0")
    if key == "localhost":
        return True
    try:
        return ipaddress.ip_address(key).is_loopback
    except ValueError:
        return False
