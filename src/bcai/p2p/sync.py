"""Block sync for lagging nodes: ask peers for ranges of blocks by height.

The chain store is the node's: the server takes a `get_block(height) -> bytes | None`
function; `fetch_blocks` returns one peer's raw encoded blocks, and `sync_blocks` drives a
catch-up over several peers, handing each answer to the node's `apply`, which verifies
every block (decodes, is the height asked for, extends our chain, carries a valid commit
certificate) before applying it. Requests are capped in count and answers in bytes.

An honest node only serves blocks it committed, so a block that fails verification is
the serving peer's fault: it is penalised (`PENALTY_BAD_BLOCK`, a ban: it is disconnected)
and the same heights are asked of the next peer. A peer that times out, fails or has no
more blocks is only skipped: slowness is not hostility.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bcai.encoding import decode, encode
from bcai.errors import BcaiError, MalformedMessage
from bcai.p2p.host import Host
from bcai.p2p.records import NodeId
from bcai.p2p.scoring import PENALTY_BAD_BLOCK, PENALTY_MALFORMED

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


# apply(peer, height, block) -> True once our chain holds `height` (False: not applied, kept
# for later, ask no further); raises a `peer_fault` error (InvalidBlock, InvalidCertificate,
# BlockRejected) for a block that fails verification
ApplyBlock = Callable[[NodeId, int, bytes], Awaitable[bool]]


async def sync_blocks(
    host: Host, peers: Sequence[NodeId], start: int, end: int, apply: ApplyBlock, timeout: float | None = None
) -> int:
    """Fetch heights `start`..`end` from `peers`, best first, and `apply` each block in
    order; return the next height still missing (`end + 1` when done).

    Each peer is asked for what is left until it has no more, fails or times out; then
    the next one is. A peer whose answer is malformed or whose block `apply` rejects as a
    peer fault is penalised (a bad block bans it) and the same height goes to the next.
    """
    height = start
    for peer in peers:
        while height <= end and peer in host.peers:
            try:
                blocks = await fetch_blocks(host, peer, height, min(MAX_BLOCKS_PER_REQUEST, end - height + 1), timeout)
            except BcaiError:  # timed out, failed, went away or malformed (penalised in fetch_blocks)
                break
            if not blocks:
                break  # it has no more: the next peer may
            try:
                for block in blocks:
                    if not await apply(peer, height, block):
                        return height  # not applied (the node keeps it for later): stop for now
                    height += 1
            except BcaiError as exc:
                if not exc.peer_fault:
                    raise
                host.metrics["bad_blocks"] += 1
                host.penalize(peer, PENALTY_BAD_BLOCK, f"bad block {height} in a sync answer: {exc}")
                host.disconnect(peer)  # banned by default; cut off even where the threshold is lower
                break
    return height
