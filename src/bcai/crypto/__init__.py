"""Hashes, content ids, ed25519 keys and signatures, Merkle trees, sealed boxes.

- `hashing.py`: SHA-256 and the 32-byte `Hash` id type.
- `cid.py`: CIDv1 content ids (raw and dag-cbor codecs, sha2-256 and BLAKE3), IPFS-compatible.
- `keys.py`: ed25519 `PrivateKey` / `PublicKey`, `Address`, domain-separated signatures
  that cover the chain id.
- `merkle.py`: RFC 6962-style Merkle roots and inclusion proofs.
- `sealed.py`: sealed boxes (anonymous public-key encryption to a node's ed25519 identity).
- `keystore.py`: named key files on disk (0600), used by `bcai keys`.
"""

from bcai.crypto.cid import BLAKE3, CODEC_DAG_CBOR, CODEC_RAW, SHA2_256, Cid
from bcai.crypto.hashing import Hash, sha256
from bcai.crypto.keys import Address, PrivateKey, PublicKey, signing_bytes
from bcai.crypto.merkle import MerkleProof, compute_merkle_proof, compute_merkle_root, verify_merkle_proof
from bcai.crypto.sealed import open_sealed, seal

__all__ = [
    "CODEC_DAG_CBOR",
    "CODEC_RAW",
    "BLAKE3",
    "SHA2_256",
    "Address",
    "Cid",
    "Hash",
    "MerkleProof",
    "PrivateKey",
    "PublicKey",
    "compute_merkle_proof",
    "compute_merkle_root",
    "open_sealed",
    "seal",
    "sha256",
    "signing_bytes",
    "verify_merkle_proof",
]
