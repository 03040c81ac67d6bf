"""bcai's peer-to-peer layer (asyncio): authenticated transport, gossip, discovery,
request/response, block sync and content transfer.

- `host.py`: `Host` (one node on the network: connections, gossip, requests, scoring),
  `HostConfig`, `GossipMessage`.
- `secure.py`: the station-to-station handshake and the encrypted frame channel.
- `transport.py`: the transport interface; `tcp.py` (asyncio TCP) and `memory.py`
  (in-memory network for tests and simulations) implement it.
- `peer.py`: one connection's priority send queue and writer.
- `budget.py`: byte budgets for what connections hold (per peer, per host, sealing pool,
  connection pool: each connection's socket and stream buffers).
- `wire.py`: the message kinds and their byte layout.
- `gossip.py`: topics, send priorities, seen-cache, forwarding rule (pure).
- `scoring.py`: token buckets (messages and bytes per peer), peer scores and bans (pure).
- `records.py`: `NodeId`, signed `NodeRecord`s, `CapabilityQuery`.
- `kademlia.py`: XOR metric, k-buckets, iterative lookup state (pure).
- `discovery.py`: bootstrap, lookups, `find_node`, `find_nodes` over the host.
- `content.py`: chunked, verified, resumable, multi-peer object transfer by CID.
- `sync.py`: block-range requests for lagging nodes, and catch-up over several peers.
- `clock.py`: injectable clocks.
- `allocator.py`: `tune_allocator` (glibc malloc thresholds for a node moving large frames).
"""

from bcai.p2p.allocator import tune_allocator
from bcai.p2p.clock import Clock, ManualClock, SystemClock
from bcai.p2p.content import (
    DEFAULT_CHUNK_SIZE,
    ContentExchange,
    Manifest,
    compute_chunks,
    read_object,
    store_object,
)
from bcai.p2p.discovery import Discovery
from bcai.p2p.gossip import (
    TOPIC_BLOCKS,
    TOPIC_CONSENSUS,
    TOPIC_TXS,
    Priority,
    SeenCache,
    compute_message_id,
    job_topic,
)
from bcai.p2p.host import GossipHandler, GossipMessage, Host, HostConfig, RequestHandler
from bcai.p2p.memory import MemoryNetwork, MemoryTransport
from bcai.p2p.records import CapabilityQuery, NodeId, NodeRecord, SignedNodeRecord, parse_peer_address
from bcai.p2p.secure import MAX_FRAME, SecureChannel, perform_handshake
from bcai.p2p.sync import BlockRangeRequest, BlockSyncServer, fetch_blocks, sync_blocks
from bcai.p2p.tcp import TcpTransport
from bcai.p2p.transport import ByteStream, Transport

__all__ = [
    "tune_allocator",
    "DEFAULT_CHUNK_SIZE",
    "MAX_FRAME",
    "TOPIC_BLOCKS",
    "TOPIC_CONSENSUS",
    "TOPIC_TXS",
    "BlockRangeRequest",
    "BlockSyncServer",
    "ByteStream",
    "CapabilityQuery",
    "Clock",
    "ContentExchange",
    "Discovery",
    "GossipHandler",
    "GossipMessage",
    "Host",
    "HostConfig",
    "ManualClock",
    "Manifest",
    "MemoryNetwork",
    "MemoryTransport",
    "NodeId",
    "NodeRecord",
    "Priority",
    "RequestHandler",
    "SecureChannel",
    "SeenCache",
    "SignedNodeRecord",
    "SystemClock",
    "TcpTransport",
    "Transport",
    "compute_chunks",
    "compute_message_id",
    "fetch_blocks",
    "job_topic",
    "parse_peer_address",
    "perform_handshake",
    "read_object",
    "store_object",
    "sync_blocks",
]
