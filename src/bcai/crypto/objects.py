"""Large objects by CID: chunks, manifests and the id an artifact goes by (pure).

An object is cut into chunks (4 MiB by default), each named by its raw CID with the BLAKE3
multihash (every chunk is hashed on both ends of a transfer: BLAKE3 costs a quarter of
SHA-256 per byte here). A manifest lists the chunk CIDs and the total size; the object's
id is the manifest's dag-cbor (sha2-256) CID. `bcai.p2p.content` moves such objects
between nodes; `bcai.sdk.Client.upload`/`download` move them through a node's API.

`compute_artifact_cid` is the one rule for what an artifact (a dataset, a model, a
checkpoint) is called: its own CID when it fits in one chunk, the manifest's CID when it
does not, so every artifact travels in pieces no larger than a chunk, well inside the
16 MiB frame and request-body limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from bcai.crypto.cid import BLAKE3, CODEC_DAG_CBOR, CODEC_RAW, Cid
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidManifest

DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
MAX_CHUNK_SIZE = 8 * 1024 * 1024
MAX_CHUNKS = 1_000_000  # 4 TiB at 4 MiB chunks; bounds the manifest we accept


@dataclass(frozen=True, slots=True)
class Manifest:
    size: int
    chunk_size: int
    chunks: tuple[Cid, ...]

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise InvalidManifest(f"chunk size must be in [1, {MAX_CHUNK_SIZE}]")
        if self.size < 0 or len(self.chunks) != -(-self.size // self.chunk_size):
            raise InvalidManifest("chunk count does not match size / chunk size")
        if len(self.chunks) > MAX_CHUNKS or any(c.codec != CODEC_RAW for c in self.chunks):
            raise InvalidManifest("chunks must be raw CIDs, at most 1,000,000 of them")

    def to_bytes(self) -> bytes:
        return encode({"size": self.size, "chunk_size": self.chunk_size, "chunks": [c.to_bytes() for c in self.chunks]})

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            obj = decode(data)
            if not isinstance(obj, dict) or set(obj) != {"size", "chunk_size", "chunks"}:
                raise InvalidManifest("a manifest is a map of size, chunk_size, chunks")
            if type(obj["size"]) is not int or type(obj["chunk_size"]) is not int or not isinstance(obj["chunks"], list):
                raise InvalidManifest("malformed manifest fields")
            chunks = tuple(Cid.from_bytes(c) for c in obj["chunks"])
        except InvalidManifest:
            raise
        except (BcaiError, TypeError) as exc:
            raise InvalidManifest(f"undecodable manifest: {exc}") from None
        return cls(obj["size"], obj["chunk_size"], chunks)

    def get_chunk_lengths(self) -> dict[Cid, int]:
        """The length each chunk must have: `chunk_size`, the last one what is left of
        `size`. A CID only names bytes, so without this check a manifest could describe 6
        bytes and list a 4 MiB chunk. `InvalidManifest` if one CID is listed at two lengths
        (no bytes can be both)."""
        lengths: dict[Cid, int] = {}
        for index, cid in enumerate(self.chunks):
            length = min(self.chunk_size, self.size - index * self.chunk_size)
            if lengths.setdefault(cid, length) != length:
                raise InvalidManifest(f"chunk {cid} is listed at two lengths")
        return lengths

    @property
    def cid(self) -> Cid:
        return Cid.of(self.to_bytes(), CODEC_DAG_CBOR)


def compute_chunks(data: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[Manifest, list[bytes]]:
    """Cut `data` into chunks and describe them (pure)."""
    view = memoryview(data)
    pieces = [bytes(view[i : i + chunk_size]) for i in range(0, len(data), chunk_size)]
    return Manifest(len(data), chunk_size, tuple(Cid.of(p, multihash=BLAKE3) for p in pieces)), pieces


def compute_artifact_cid(data: bytes, codec: int = CODEC_RAW, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Cid:
    """The id of an artifact: `Cid.of(data, codec)` up to one chunk; beyond, the CID of
    the manifest of its chunks (whatever `codec` says: what the bytes mean is the reader's
    business, the manifest only describes bytes)."""
    if len(data) <= chunk_size:
        return Cid.of(data, codec)
    return compute_chunks(data, chunk_size)[0].cid
