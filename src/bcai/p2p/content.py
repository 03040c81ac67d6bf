"""Content transfer of large objects by CID: chunked, hash-checked, resumable, multi-peer.

Objects, chunks and manifests are defined in `bcai.crypto.objects` (4 MiB chunks under
raw BLAKE3 CIDs; the object's id is its manifest's dag-cbor CID). Fetching asks several
providers at once (a few requests in flight per provider), checks every chunk against its
CID on arrival, stores it at once, and skips chunks already in the store: an interrupted
fetch resumes where it stopped. A provider that sends a wrong chunk is penalised and not
asked again in this fetch; its chunk goes back to the queue for the others. Chunk requests
are a bulk protocol for the host's rate limit (served chunks are bounded by requests in
flight, not by messages per second), so a fetch at full speed does not get the fetcher
banned. An object whose manifest says it is larger than `max_object_bytes` (8 GiB by
default) is refused before any chunk is fetched: a manifest someone else chose (a job's
dataset, a worker's model) cannot make us fill the disk.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque

from bcai.crypto import CODEC_DAG_CBOR, Cid
from bcai.crypto.objects import DEFAULT_CHUNK_SIZE, Manifest, compute_chunks
from bcai.errors import BcaiError, ContentUnavailable, InvalidCid, InvalidManifest, MalformedMessage
from bcai.p2p import scoring
from bcai.p2p.host import Host
from bcai.p2p.records import NodeId
from bcai.store.content import ContentStore

GET_PROTOCOL = "content/get"
MAX_OBJECT_BYTES = 8 << 30  # the largest object `fetch` stores unless told otherwise


def store_object(store: ContentStore, data: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Cid:
    """Chunk `data` into `store`; return the object's id (its manifest's CID)."""
    manifest, pieces = compute_chunks(data, chunk_size)
    for cid, piece in zip(manifest.chunks, pieces):
        store.put_verified(cid, piece)
    return store.put(manifest.to_bytes(), CODEC_DAG_CBOR)


def get_manifest(store: ContentStore, object_id: Cid) -> Manifest:
    if object_id.codec != CODEC_DAG_CBOR:
        raise InvalidManifest(f"{object_id} is not a manifest id (dag-cbor)")
    return Manifest.from_bytes(store.get(object_id))


def read_object(store: ContentStore, object_id: Cid) -> bytes:
    """Reassemble a stored object (every chunk verified); `ContentNotFound` if incomplete,
    `InvalidManifest` if a chunk is not as long as the manifest says."""
    manifest = get_manifest(store, object_id)
    lengths = manifest.get_chunk_lengths()
    pieces = [store.get(c) for c in manifest.chunks]
    for cid, piece in zip(manifest.chunks, pieces):
        if len(piece) != lengths[cid]:
            raise InvalidManifest(f"chunk {cid} of {object_id} is {len(piece)} bytes, its manifest says {lengths[cid]}")
    return b"".join(pieces)


class ContentExchange:
    """Serves the store's content to peers (`content/get`) and fetches objects from them."""

    def __init__(self, host: Host, store: ContentStore, window_per_peer: int = 8, timeout: float = 30.0,
                 max_object_bytes: int = MAX_OBJECT_BYTES) -> None:
        self.host = host
        self.store = store
        self.max_object_bytes = max_object_bytes
        self.window_per_peer = window_per_peer
        self.timeout = timeout
        self.metrics: Counter[str] = Counter()
        host.register_handler(GET_PROTOCOL, self._serve, bulk=True)

    async def _serve(self, peer: NodeId, payload: bytes) -> bytes:
        try:
            cid = Cid.from_bytes(payload)
        except InvalidCid as exc:
            raise MalformedMessage(f"content/get wants a binary CID: {exc}") from None
        # Disk reads and hash checks run on a worker thread: they release the GIL and the
        # event loop keeps serving the sockets meanwhile.
        data = await asyncio.get_running_loop().run_in_executor(None, self.store.get, cid)
        self.metrics["chunks_served"] += 1
        return data

    async def fetch(self, object_id: Cid, providers: list[NodeId]) -> Manifest:
        """Make the object complete in the local store, fetching what is missing.

        Raises `ContentUnavailable` if the providers cannot supply every chunk; what did
        arrive stays stored, so calling again (with other providers) resumes.
        `InvalidManifest` for an object over `max_object_bytes` (no chunk is fetched).
        """
        manifest = await self._fetch_manifest(object_id, providers)
        if manifest.size > self.max_object_bytes:
            raise InvalidManifest(f"{object_id} is {manifest.size} bytes, more than this node fetches "
                                  f"({self.max_object_bytes})")
        lengths = manifest.get_chunk_lengths()
        missing = deque(dict.fromkeys(c for c in manifest.chunks if not self.store.has(c)))
        self.metrics["chunks_skipped"] += len(set(manifest.chunks)) - len(missing)
        alive = [p for p in providers if p in self.host.peers]
        while missing and alive:
            workers = [
                self._fetch_chunks(p, missing, alive, lengths) for p in list(alive) for _ in range(self.window_per_peer)
            ]
            # every worker ends (a bad manifest empties the queue) before an error is raised
            for result in await asyncio.gather(*workers, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
        if missing:
            raise ContentUnavailable(f"{len(missing)} of {len(manifest.chunks)} chunks of {object_id} unavailable")
        return manifest

    async def fetch_bytes(self, object_id: Cid, providers: list[NodeId]) -> bytes:
        await self.fetch(object_id, providers)
        return read_object(self.store, object_id)

    async def _fetch_manifest(self, object_id: Cid, providers: list[NodeId]) -> Manifest:
        if self.store.has(object_id):
            return get_manifest(self.store, object_id)
        if object_id.codec != CODEC_DAG_CBOR:
            raise InvalidManifest(f"{object_id} is not a manifest id (dag-cbor)")
        for peer in providers:
            try:
                data = await self.host.request(peer, GET_PROTOCOL, object_id.to_bytes(), self.timeout)
            except BcaiError:
                continue
            if not object_id.matches(data):
                self.host.penalize(peer, scoring.PENALTY_BAD_CONTENT, f"wrong bytes for {object_id}")
                continue
            try:
                manifest = Manifest.from_bytes(data)
            except InvalidManifest:
                continue  # the right bytes, but not a manifest: nobody's fault but the asker's
            self.store.put_verified(object_id, data)
            return manifest
        raise ContentUnavailable(f"no provider delivered the manifest {object_id}")

    async def _fetch_chunks(self, peer: NodeId, missing: deque[Cid], alive: list[NodeId], lengths: dict[Cid, int]) -> None:
        loop = asyncio.get_running_loop()
        while missing and peer in alive:
            chunk = missing.popleft()
            try:
                data = await self.host.request(peer, GET_PROTOCOL, chunk.to_bytes(), self.timeout)
            except BcaiError:
                missing.append(chunk)
                if peer in alive:
                    alive.remove(peer)
                return
            try:  # the one hash check of this chunk, and the write, off the event loop
                if len(data) != lengths[chunk]:
                    if await loop.run_in_executor(None, chunk.matches, data):
                        # the right bytes: the manifest lied about them, not the provider
                        missing.clear()
                        raise InvalidManifest(f"chunk {chunk} is {len(data)} bytes, its manifest says {lengths[chunk]}")
                    raise InvalidCid(f"content does not match {chunk}")
                await loop.run_in_executor(None, self.store.put_verified, chunk, data)
            except InvalidCid:
                self.metrics["corrupt_chunks"] += 1
                self.host.penalize(peer, scoring.PENALTY_BAD_CONTENT, f"wrong bytes for chunk {chunk}")
                missing.append(chunk)
                if peer in alive:
                    alive.remove(peer)
                return
            self.metrics["chunks_fetched"] += 1
