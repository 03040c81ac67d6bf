"""Pin the public names of bcai.p2p and bcai.store (STYLE 10)."""

import bcai.p2p
import bcai.store


def test_public_names_are_pinned() -> None:
    assert sorted(bcai.p2p.__all__) == sorted([
        "DEFAULT_CHUNK_SIZE", "MAX_FRAME", "TOPIC_BLOCKS", "TOPIC_CONSENSUS", "TOPIC_TXS",
        "BlockRangeRequest", "BlockSyncServer", "ByteStream", "CapabilityQuery", "Clock",
        "ContentExchange", "Discovery", "GossipHandler", "GossipMessage", "Host", "HostConfig",
        "ManualClock", "Manifest", "MemoryNetwork", "MemoryTransport", "NodeId", "NodeRecord",
        "Priority", "RequestHandler", "SecureChannel", "SeenCache", "SignedNodeRecord",
        "SystemClock", "TcpTransport", "Transport", "compute_chunks", "compute_message_id",
        "fetch_blocks", "job_topic", "parse_peer_address", "perform_handshake", "read_object",
        "store_object", "sync_blocks", "tune_allocator",
    ])
    for name in bcai.p2p.__all__:
        assert getattr(bcai.p2p, name) is not None
    assert {"ContentStore", "FileContentStore", "MemoryContentStore"} <= set(bcai.store.__all__)
