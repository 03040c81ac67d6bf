"""Merkle roots and inclusion proofs, shaped as in RFC 6962 (Certificate Transparency).

Leaves are hashed as SHA-256(0x00 || leaf) and inner nodes as SHA-256(0x01 || left ||
right), so a leaf can never be passed off as an inner node (second-preimage attack), and
an odd tree splits at the largest power of two below its size instead of duplicating
the last leaf (which made Bitcoin's tree ambiguous, CVE-2012-2459). The root of the
empty list is SHA-256 of the empty string.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from bcai.errors import InvalidMerkleProof


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def compute_merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [_leaf(item) for item in leaves]
    return _root_of_hashes(level)


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


@dataclass(frozen=True, slots=True)
class MerkleProof:
    index: int
    size: int
    path: tuple[bytes, ...]  # sibling hashes from the leaf up to the root


def compute_merkle_proof(leaves: Sequence[bytes], index: int) -> MerkleProof:
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} outside a tree of {len(leaves)}")
    hashes = [_leaf(item) for item in leaves]
    path: list[bytes] = []
    _collect_path(hashes, index, path)
    return MerkleProof(index, len(leaves), tuple(reversed(path)))


def _collect_path(hashes: list[bytes], index: int, path: list[bytes]) -> None:
    # Appends siblings from the root down; the caller reverses to leaf-up order.
    if len(hashes) == 1:
        return
    k = _split(len(hashes))
    if index < k:
        path.append(_root_of_hashes(hashes[k:]))
        _collect_path(hashes[:k], index, path)
    else:
        path.append(_root_of_hashes(hashes[:k]))
        _collect_path(hashes[k:], index - k, path)


def verify_merkle_proof(root: bytes, leaf: bytes, proof: MerkleProof) -> None:
    """Raise `InvalidMerkleProof` unless `leaf` sits at `proof.index` under `root`."""
    if not 0 <= proof.index < proof.size:
        raise InvalidMerkleProof("index outside the tree")
    # Walk down from the root to learn, for each level, whether our subtree is left or right.
    sides: list[bool] = []  # True: the sibling is on the right
    index, size = proof.index, proof.size
    while size > 1:
        k = _split(size)
        if index < k:
            sides.append(True)
            size = k
        else:
            sides.append(False)
            index, size = index - k, size - k
    if len(sides) != len(proof.path):
        raise InvalidMerkleProof("proof length does not match the tree shape")
    acc = _leaf(leaf)
    for sibling, sibling_is_right in zip(proof.path, reversed(sides)):
        acc = _node(acc, sibling) if sibling_is_right else _node(sibling, acc)
    if acc != root:
        raise InvalidMerkleProof("proof does not lead to the root")
