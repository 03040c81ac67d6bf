"""Artifacts larger than a chunk (datasets, models, checkpoints over 4 MiB): the SDK uploads
them as BLAKE3 chunks plus a manifest, `download` reassembles them with every piece checked,
and a node that lacks them fetches every piece from a peer. Small artifacts keep their own
CID, byte for byte as before."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import torch

from bcai.crypto import BLAKE3, CODEC_DAG_CBOR, CODEC_RAW, Cid, PrivateKey
from bcai.crypto.objects import DEFAULT_CHUNK_SIZE, Manifest, compute_artifact_cid, compute_chunks
from bcai.encoding import encode
from bcai.errors import InvalidManifest
from bcai.node import init_home
from bcai.node.config import P2PConfig
from bcai.node.embedded import running_node
from bcai.p2p import ContentExchange, Host, HostConfig, TcpTransport, store_object
from bcai.sdk import Client
from bcai.store import MemoryContentStore
from bcai.vm.tensors import compute_tensors_hash, encode_tensors
from test_jobs_relay import call

pytestmark = pytest.mark.timeout(120)

CHAIN = "bcai-artifacts"


def test_artifact_ids_are_their_own_cid_up_to_a_chunk_and_a_manifest_beyond() -> None:
    small, large = os.urandom(DEFAULT_CHUNK_SIZE), os.urandom(DEFAULT_CHUNK_SIZE + 1)
    assert compute_artifact_cid(small) == Cid.of(small)
    assert compute_artifact_cid(small, CODEC_DAG_CBOR) == Cid.of(small, CODEC_DAG_CBOR)
    manifest, pieces = compute_chunks(large)
    assert compute_artifact_cid(large) == compute_artifact_cid(large, CODEC_DAG_CBOR) == manifest.cid
    assert [len(p) for p in pieces] == [DEFAULT_CHUNK_SIZE, 1] and manifest.size == len(large)
    # a model over 4 MiB is named by the manifest it is uploaded as
    big_model = {"w": torch.zeros(1_200_000)}
    assert compute_tensors_hash(big_model) == compute_artifact_cid(encode_tensors(big_model), CODEC_DAG_CBOR)
    assert compute_tensors_hash(big_model).codec == CODEC_DAG_CBOR


def test_large_artifacts_upload_in_chunks_and_download_whole(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "artifacts", ("validator",), CHAIN, p2p=P2PConfig(port=0))
    large = os.urandom(2 * DEFAULT_CHUNK_SIZE + 12345)
    repeated = bytes(3 * DEFAULT_CHUNK_SIZE)  # three identical chunks
    document = encode({"note": "an ordinary dag-cbor document", "size": 3})

    async def scenario() -> None:
        async with running_node(home) as (node, url):
            client = Client(url, key=node.key)
            cid = await call(client.upload, large)
            manifest = Manifest.from_bytes(node.content.get(cid))
            assert cid == compute_artifact_cid(large) and cid.codec == CODEC_DAG_CBOR
            assert len(manifest.chunks) == 3 and all(c.multihash == BLAKE3 for c in manifest.chunks)
            assert all(node.content.has(c) for c in manifest.chunks)  # each chunk stored on the node
            assert await call(client.download, cid) == large
            assert await call(client.download, str(cid)) == large
            assert await call(client.download, await call(client.upload, repeated)) == repeated
            # small artifacts and non-manifest documents are single blobs, as before
            small = await call(client.upload, b"small model")
            assert small == Cid.of(b"small model") and small.codec == CODEC_RAW
            assert await call(client.download, small) == b"small model"
            doc_cid = await call(client.upload, document, CODEC_DAG_CBOR)
            assert doc_cid == Cid.of(document, CODEC_DAG_CBOR)
            assert await call(client.download, doc_cid) == document
            # a manifest whose chunks are not the sizes it claims is refused, not returned short
            liar = Manifest(2 * DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, (Cid.of(b"a", multihash=BLAKE3),) * 2)
            await call(client._upload_blob, Cid.of(b"a", multihash=BLAKE3), b"a")
            await call(client._upload_blob, liar.cid, liar.to_bytes())
            with pytest.raises(InvalidManifest, match="chunk 0 .* is 1 bytes"):
                await call(client.download, liar.cid)
            # a manifest claiming more than the caller allows is refused before any chunk is fetched
            huge = Manifest(1 << 40, DEFAULT_CHUNK_SIZE, (Cid.of(b"missing", multihash=BLAKE3),) * (1 << 18))
            await call(client._upload_blob, huge.cid, huge.to_bytes())
            with pytest.raises(InvalidManifest, match="more than"):
                await call(client.download, huge.cid)
            with pytest.raises(InvalidManifest, match="more than"):
                await call(client.download, cid, len(large) - 1)
            client.close()

    asyncio.run(scenario())


def test_a_node_fetches_every_piece_of_a_large_artifact_from_a_peer(tmp_path: Path) -> None:
    """The node has nothing; a peer holds a chunked model. Downloading through the node's
    API makes the node fetch the manifest and each chunk from the peer, each checked."""
    home = tmp_path / "node"
    init_home(home, "artifacts-fetch", ("validator",), CHAIN, p2p=P2PConfig(port=0))
    model = encode_tensors({"w": torch.arange(1_500_000, dtype=torch.float32)})  # ~6 MiB

    async def scenario() -> None:
        async with running_node(home) as (node, url):
            peer = Host(PrivateKey.from_label("artifact-peer"), TcpTransport(), HostConfig(network_id=CHAIN))
            await peer.start("127.0.0.1:0")
            served = ContentExchange(peer, MemoryContentStore())
            cid = store_object(served.store, model)
            assert cid == compute_tensors_hash({"w": torch.arange(1_500_000, dtype=torch.float32)})
            await peer.connect(node.host.address, node.host.node_id)
            try:
                client = Client(url)
                assert await call(client.download, cid) == model
                assert served.metrics["chunks_served"] == 3  # the manifest and two chunks
                assert node.content.has(cid)  # kept by the node, served to the next asker
                client.close()
            finally:
                await peer.stop()

    asyncio.run(scenario())
