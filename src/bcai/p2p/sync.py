"""Block sync for lagging nodes: ask a peer for a range of blocks by height.

The chain store is the node's: the server takes a `get_block(height) -> bytes | None`
function; the client returns the raw encoded blocks and the node verifies each one (its
commit signatures) before applying it. Requests are capped in count and answers in bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bcai.encoding import decode, encode
from bcai.errors import BcaiError, MalformedMessage
from bcai.p2p.host import Host
from bcai.p2p.records import NodeId
from bcai.p2p.scoring import PENALTY_MALFORMED

BLOCKS_PROTOCOL = "sync/blocks"
MAX_BLOCKS_PER_REQUEST = 64
MAX_ANSWER_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlockRangeRequest:
    start: int
    count: int

    def __post_init__(self) -> None:
        if type(self.start) is not int or type(self.count) is not int:
            raise MalformedMessage("block range fields are integers")
        if self.start < 0 or not 1 <= self.count <= MAX_BLOCKS_PER_REQUEST:
            raise MalformedMessage(f"block range wants start >= 0 and 1 <= count <= {MAX_BLOCKS_PER_REQUEST}")

    def to_bytes(self) -> bytes:
        return encode({"start": self.start, "count": self.count})

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockRangeRequest:
        try:
            obj = decode(data)
        except BcaiError as exc:
            raise MalformedMessage(f"undecodable block range: {exc}") from None
        if not isinstance(obj, dict) or set(obj) != {"start", "count"}:
            raise MalformedMessage("a block range is a map of start, count")
        return cls(obj["start"], obj["count"])


class BlockSyncServer:
    """Answers `sync/blocks` from `get_block`: consecutive blocks from `start` until a
    height is missing, `count` is reached or the answer would pass `MAX_ANSWER_BYTES`
    (at least one block is always sent, so any block that fits a frame can be synced)."""

    def __init__(self, get_block: Callable[[int], bytes | None]) -> None:
        self.get_block = get_block

    def register(self, host: Host) -> None:
        host.register_handler(BLOCKS_PROTOCOL, self._serve)

    async def _serve(self, peer: NodeId, payload: bytes) -> bytes:
        request = BlockRangeRequest.from_bytes(payload)
        blocks: list[bytes] = []
        total = 0
        for height in range(request.start, request.start + request.count):
            block = self.get_block(height)
            if block is None or (blocks and total + len(block) > MAX_ANSWER_BYTES):
                break
            blocks.append(block)
            total += len(block)
        return encode(blocks)


async def fetch_blocks(host: Host, peer: NodeId, start: int, count: int, timeout: float | None = None) -> list[bytes]:
    """Blocks `start`, `start + 1`, ... (at most `count`) as the peer encoded them."""
    request = BlockRangeRequest(start, count)
    body = await host.request(peer, BLOCKS_PROTOCOL, request.to_bytes(), timeout)
    try:
        blocks = decode(body)
    except BcaiError:
        blocks = None
    if not isinstance(blocks, list) or len(blocks) > count or not all(isinstance(b, bytes) for b in blocks):
        host.penalize(peer, PENALTY_MALFORMED, "malformed block answer")
        raise MalformedMessage("a block answer is a list of at most `count` byte strings")
    return blocks
