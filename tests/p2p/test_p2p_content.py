"""Content store (one test class, both implementations) and content transfer over hosts:
multi-chunk objects, a provider with a corrupt chunk, resume after a disconnect, block sync."""

from __future__ import annotations

import asyncio
import os

import pytest
from p2p_netkit import TRANSPORTS, Net, connect_all, eventually, run

from bcai.crypto import BLAKE3, CODEC_DAG_CBOR, Cid
from bcai.errors import (
    ConnectionClosed,
    ContentNotFound,
    ContentUnavailable,
    CorruptContent,
    InvalidCid,
    InvalidManifest,
    MalformedMessage,
    RequestFailed,
    RequestTimeout,
)
from bcai.p2p import BlockSyncServer, HostConfig, ContentExchange, Manifest, NodeId, compute_chunks, fetch_blocks, read_object, store_object
from bcai.p2p.content import GET_PROTOCOL
from bcai.p2p.host import BULK_FREE_BYTES
from bcai.store import ContentStore, FileContentStore, MemoryContentStore


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path) -> ContentStore:
    return MemoryContentStore() if request.param == "memory" else FileContentStore(tmp_path / "content", fsync=True)


class TestContentStore:
    def test_put_get_has_delete(self, store: ContentStore) -> None:
        cid = store.put(b"hello")
        assert cid == Cid.of(b"hello") and store.has(cid) and store.get(cid) == b"hello"
        assert store.put(b"hello") == cid
        assert list(store.cids()) == [cid]
        store.delete(cid)
        assert not store.has(cid)
        with pytest.raises(ContentNotFound):
            store.get(cid)

    def test_codecs_give_different_ids(self, store: ContentStore) -> None:
        assert store.put(b"\xa0", CODEC_DAG_CBOR) != store.put(b"\xa0")

    def test_invalid_put_verified_rejects_wrong_bytes(self, store: ContentStore) -> None:
        with pytest.raises(InvalidCid):
            store.put_verified(Cid.of(b"one"), b"two")
        assert not store.has(Cid.of(b"one"))

    def test_corrupt_bytes_are_detected_and_removed(self, store: ContentStore) -> None:
        cid = store.put(b"precious")
        if isinstance(store, FileContentStore):
            path = store._path(cid)
            path.write_bytes(b"tampered")
        else:
            store.blobs[cid] = b"tampered"  # type: ignore[attr-defined]
        with pytest.raises(CorruptContent):
            store.get(cid)
        assert not store.has(cid)

    def test_objects_roundtrip_through_chunks(self, store: ContentStore) -> None:
        data = os.urandom(10_000)
        object_id = store_object(store, data, chunk_size=1024)
        assert object_id.codec == CODEC_DAG_CBOR
        assert read_object(store, object_id) == data
        assert read_object(store, store_object(store, b"", 1024)) == b""


def test_file_store_leaves_no_temp_files_and_ignores_strays(tmp_path) -> None:
    store = FileContentStore(tmp_path)
    cid = store.put(b"x" * 1000)
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "bnot-a-cid").write_bytes(b"")
    assert list(store.cids()) == [cid]
    assert not list(tmp_path.rglob(".tmp-*"))


def test_invalid_manifests() -> None:
    manifest, _ = compute_chunks(b"abcdef", chunk_size=4)
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest and len(manifest.chunks) == 2
    with pytest.raises(InvalidManifest):
        Manifest(7, 4, manifest.chunks[:1])  # count does not match size
    with pytest.raises(InvalidManifest):
        Manifest(0, 0, ())
    with pytest.raises(InvalidManifest):
        Manifest(4, 4, (Cid.of(b"x", CODEC_DAG_CBOR),))
    for junk in (b"\xff", b"\xa0", b"\xa3dsize\x01dchunks\x80jchunk_size\x00"):
        with pytest.raises(InvalidManifest):
            Manifest.from_bytes(junk)


CHUNK = 64 * 1024


async def _providers(net: Net, count: int, data: bytes):
    hosts = [await net.host(f"provider{i}") for i in range(count)]
    exchanges = [ContentExchange(h, MemoryContentStore()) for h in hosts]
    object_id = None
    for exchange in exchanges:
        object_id = store_object(exchange.store, data, CHUNK)
    fetcher = await net.host("fetcher")
    mine = ContentExchange(fetcher, MemoryContentStore(), window_per_peer=2)
    await connect_all([fetcher, *hosts], [(0, i + 1) for i in range(count)])
    return hosts, exchanges, fetcher, mine, object_id


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_transfer_from_several_peers_rejects_a_corrupt_chunk(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        data = os.urandom(20 * CHUNK + 123)
        hosts, exchanges, fetcher, mine, object_id = await _providers(net, 3, data)
        liar = hosts[1]

        async def lying(peer: NodeId, payload: bytes) -> bytes:  # corrupts every chunk
            cid = Cid.from_bytes(payload)
            data = exchanges[1].store.get(cid)
            return data if cid == object_id else b"\x00" + data[1:]

        liar.register_handler(GET_PROTOCOL, lying, replace=True)
        got = await mine.fetch_bytes(object_id, [h.node_id for h in hosts])
        assert got == data
        # the liar is dropped at its first bad chunk: only what was in flight was wasted
        assert 1 <= mine.metrics["corrupt_chunks"] <= mine.window_per_peer
        assert fetcher.scores.get_score(liar.node_id, fetcher.clock.now()) < 0
        served = [e.metrics["chunks_served"] for e in exchanges]
        assert served[0] > 0 and served[2] > 0  # the work was spread
        assert mine.metrics["chunks_fetched"] == 21
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_transfer_resumes_after_a_disconnect(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        data = os.urandom(16 * CHUNK)
        hosts, exchanges, fetcher, mine, object_id = await _providers(net, 2, data)
        flaky, steady = hosts
        served = 0

        async def hang_up_after_six(peer: NodeId, payload: bytes) -> bytes:
            nonlocal served
            served += 1
            if served > 7:  # the manifest and six chunks, then it goes away
                flaky.disconnect(peer)
                raise ConnectionClosed("gone")
            return exchanges[0].store.get(Cid.from_bytes(payload))

        flaky.register_handler(GET_PROTOCOL, hang_up_after_six, replace=True)
        with pytest.raises(ContentUnavailable):
            await mine.fetch(object_id, [flaky.node_id])
        have = sum(1 for c in Manifest.from_bytes(mine.store.get(object_id)).chunks if mine.store.has(c))
        assert have == 6
        before = exchanges[1].metrics["chunks_served"]
        assert await mine.fetch_bytes(object_id, [steady.node_id]) == data
        assert exchanges[1].metrics["chunks_served"] - before == 16 - 6  # nothing fetched twice
        assert mine.metrics["chunks_skipped"] == 6
        await net.close()

    run(main)


def test_chunks_are_blake3_cids_and_checked_on_arrival(store: ContentStore) -> None:
    manifest, pieces = compute_chunks(os.urandom(5000), chunk_size=1024)
    assert all(c.multihash == BLAKE3 and c.matches(p) for c, p in zip(manifest.chunks, pieces))
    assert manifest.cid.multihash != BLAKE3  # the object id stays an ordinary sha2-256 dag-cbor CID
    with pytest.raises(InvalidCid):
        store.put_verified(manifest.chunks[0], pieces[1])


def test_a_fetch_faster_than_the_message_rate_limit_is_not_punished() -> None:
    """Served chunk requests are bulk traffic: a provider limiting peers to 5 messages/s
    still serves 60 chunks as fast as they are asked for, without a penalty; asks it cannot
    answer, and asks for small things (under BULK_FREE_BYTES), are ordinary messages and are
    cut off past the limit."""

    async def main() -> None:
        net = Net("memory")
        strict = HostConfig(rate_per_s=5.0, rate_burst=5.0)
        provider, fetcher = await net.host("provider", strict), await net.host("fetcher")
        served = ContentExchange(provider, MemoryContentStore())
        object_id = store_object(served.store, os.urandom(60 * BULK_FREE_BYTES), chunk_size=BULK_FREE_BYTES)
        mine = ContentExchange(fetcher, MemoryContentStore(), window_per_peer=8)
        await fetcher.connect(provider.address, provider.node_id)
        assert await mine.fetch_bytes(object_id, [provider.node_id]) == read_object(served.store, object_id)
        assert served.metrics["chunks_served"] == 61  # the manifest and 60 chunks
        assert provider.metrics["rate_limited"] == 0
        assert provider.scores.get_score(fetcher.node_id, provider.clock.now()) == 0
        for i in range(12):  # asks for content the provider does not have: charged, then refused
            with pytest.raises((RequestFailed, RequestTimeout)):  # answered "not found", or dropped
                await fetcher.request(provider.node_id, GET_PROTOCOL, Cid.of(b"%d" % i).to_bytes(), timeout=0.2)
        await eventually(lambda: provider.metrics["rate_limited"] > 0)
        assert provider.scores.get_score(fetcher.node_id, provider.clock.now()) < 0
        # served, but small (the manifest, 2 KiB): charged too
        small = await net.host("small-asker")
        await small.connect(provider.address, provider.node_id)
        asks = [small.request(provider.node_id, GET_PROTOCOL, object_id.to_bytes(), timeout=0.5) for _ in range(12)]
        answers = await asyncio.gather(*asks, return_exceptions=True)
        assert 1 <= sum(isinstance(a, bytes) for a in answers) < 12  # what is left of the burst, then dropped
        assert all(isinstance(a, (bytes, RequestTimeout)) for a in answers)
        assert provider.scores.get_score(small.node_id, provider.clock.now()) < 0
        await net.close()

    run(main)


def test_invalid_object_larger_than_the_fetcher_takes_fetches_no_chunk() -> None:
    # a manifest names its size: one past the bound is refused before any chunk is stored,
    # so content a job names cannot make a node fill its disk
    async def main() -> None:
        net = Net("memory")
        data = os.urandom(3 * CHUNK)
        hosts, _, _, mine, object_id = await _providers(net, 1, data)
        provider = hosts[0].node_id
        mine.max_object_bytes = len(data) - 1
        with pytest.raises(InvalidManifest, match="more than this node fetches"):
            await mine.fetch(object_id, [provider])
        assert list(mine.store.cids()) == [object_id]  # the manifest only
        mine.max_object_bytes = len(data)
        assert await mine.fetch_bytes(object_id, [provider]) == data
        await net.close()

    run(main)


def test_invalid_content_requests() -> None:
    async def main() -> None:
        net = Net("memory")
        hosts, exchanges, fetcher, mine, object_id = await _providers(net, 1, b"abc")
        provider = hosts[0].node_id
        with pytest.raises(RequestFailed, match="malformed_message"):
            await fetcher.request(provider, GET_PROTOCOL, b"not a cid")
        with pytest.raises(RequestFailed, match="content_not_found"):
            await fetcher.request(provider, GET_PROTOCOL, Cid.of(b"missing").to_bytes())
        with pytest.raises(ContentUnavailable):
            await mine.fetch(Cid.of(b"nobody has this", CODEC_DAG_CBOR), [provider])
        with pytest.raises(InvalidManifest):
            await mine.fetch(Cid.of(b"raw"), [provider])
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_block_sync_serves_ranges(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        server, client = await net.host("synced"), await net.host("lagging")
        chain = {h: f"block {h}".encode() * 10 for h in range(1, 101)}
        BlockSyncServer(chain.get).register(server)
        await client.connect(server.address, server.node_id)
        assert await fetch_blocks(client, server.node_id, 1, 10) == [chain[h] for h in range(1, 11)]
        assert await fetch_blocks(client, server.node_id, 95, 64) == [chain[h] for h in range(95, 101)]
        assert await fetch_blocks(client, server.node_id, 500, 5) == []
        with pytest.raises(MalformedMessage):
            await fetch_blocks(client, server.node_id, 1, 0)
        with pytest.raises(RequestFailed):
            await client.request(server.node_id, "sync/blocks", b"\xff")
        await net.close()

    run(main)


def test_invalid_manifest_whose_chunks_have_other_lengths_is_refused() -> None:
    """Chunks are checked against their CIDs, but a manifest could name chunks of any
    length: declare 6 bytes in chunks of 4 and point at a 4 MiB blob. The fetch used to
    download and store it all and `read_object` returned 4 MiB for a 6-byte object. Now a
    chunk of another length than the manifest implies ends the fetch with `InvalidManifest`
    (the provider sent the right bytes: no penalty)."""
    async def main() -> None:
        net = Net("memory")
        provider, fetcher = await net.host("provider"), await net.host("fetcher")
        theirs, mine = ContentExchange(provider, MemoryContentStore()), ContentExchange(fetcher, MemoryContentStore())
        big = os.urandom(4 * 1024 * 1024)
        first, second = (Cid.of(piece, multihash=BLAKE3) for piece in (b"abcd", big))
        for cid, piece in ((first, b"abcd"), (second, big)):
            theirs.store.put_verified(cid, piece)
        lying = theirs.store.put(Manifest(6, 4, (first, second)).to_bytes(), CODEC_DAG_CBOR)
        twice = theirs.store.put(Manifest(6, 4, (first, first)).to_bytes(), CODEC_DAG_CBOR)
        await connect_all([fetcher, provider], [(0, 1)])
        with pytest.raises(InvalidManifest, match="chunk"):
            await mine.fetch(lying, [provider.node_id])
        assert not mine.store.has(second)
        with pytest.raises(InvalidManifest, match="two lengths"):  # no bytes can be both
            await mine.fetch(twice, [provider.node_id])
        assert fetcher.scores.get_score(provider.node_id, fetcher.clock.now()) == 0
        await net.close()

    run(main)


def test_invalid_read_object_with_chunks_of_other_lengths(store: ContentStore) -> None:
    manifest, pieces = compute_chunks(b"abcdef", chunk_size=4)
    long = Cid.of(b"abcdefgh", multihash=BLAKE3)
    store.put_verified(long, b"abcdefgh")
    object_id = store.put(Manifest(6, 4, (long, manifest.chunks[1])).to_bytes(), CODEC_DAG_CBOR)
    store.put_verified(manifest.chunks[1], pieces[1])
    with pytest.raises(InvalidManifest):
        read_object(store, object_id)
