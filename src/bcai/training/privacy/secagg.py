"""Secure aggregation with pairwise masks (Bonawitz et al. 2017, without dropout recovery).

Every pair of clients (i, j) shares a seed: from an X25519 agreement of their keys
(`compute_pair_seed`) or from a secret they already share (`compute_pair_seed_from_secret`).
Each client turns its update into fixed-point integers modulo 2^64, pre-multiplied by
its sample count (so the server gets FedAvg), and adds, for every peer j, the mask
PRG(seed_ij) when its id sorts below j's and subtracts it otherwise. In the modular sum
of all clients every mask appears once with + and once with -: they cancel exactly,
and the server learns only the sum.

- PRG: SHAKE-256 over (domain, seed, round, parameter name), read as little-endian
  uint64 words: a cryptographic XOF, deterministic on every platform.
- Fixed point: `FRACTIONAL_BITS` = 24 (resolution 6e-8 per sample-weighted unit). A
  client refuses (InvalidMaskedUpdate) a value whose |x * n_samples| * 2^24 could
  overflow the signed 64-bit sum of all participants.
- Dropout: NOT recovered. If a client that was in the mask set does not deliver, its
  masks do not cancel and `compute_secure_average` raises `MaskedClientDropped`: the
  round must be re-run with the remaining clients (who re-mask without the dropped
  peer). Recovery through Shamir shares of the pair seeds is out of scope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import nacl.bindings
import numpy as np
import torch

from bcai.errors import InvalidAggregationParameter, InvalidMaskedUpdate, MaskedClientDropped
from bcai.training.updates import ModelUpdate, check_updates

FRACTIONAL_BITS = 24
_SCALE = float(1 << FRACTIONAL_BITS)
_PAIR_DOMAIN = b"bcai/secagg/pair-seed/v1"
_MASK_DOMAIN = b"bcai/secagg/mask/v1"


def _frame(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _check_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidMaskedUpdate(f"client ids must be non-empty strings, got {value!r}")
    return value


def compute_pair_seed(my_private_x25519: bytes, peer_public_x25519: bytes, context: bytes) -> bytes:
    """32-byte pair seed from an X25519 agreement; both peers derive the same bytes.

    `context` binds the seed to one job (e.g. the job id); use a fresh `round_id` per
    round when masking, not a fresh seed.
    """
    if not isinstance(my_private_x25519, bytes) or len(my_private_x25519) != 32:
        raise InvalidAggregationParameter("my_private_x25519 must be 32 bytes")
    if not isinstance(peer_public_x25519, bytes) or len(peer_public_x25519) != 32:
        raise InvalidAggregationParameter("peer_public_x25519 must be 32 bytes")
    try:
        shared = nacl.bindings.crypto_scalarmult(my_private_x25519, peer_public_x25519)
    except Exception as exc:  # libsodium refuses low-order points
        raise InvalidAggregationParameter(f"X25519 agreement failed: {exc}") from None
    return compute_pair_seed_from_secret(shared, context)


def compute_pair_seed_from_secret(shared_secret: bytes, context: bytes) -> bytes:
    if not isinstance(shared_secret, bytes) or len(shared_secret) < 16:
        raise InvalidAggregationParameter("shared_secret must be at least 16 bytes")
    if not isinstance(context, bytes):
        raise InvalidAggregationParameter("context must be bytes")
    return hashlib.sha256(_frame(_PAIR_DOMAIN, context, shared_secret)).digest()


def compute_mask(pair_seed: bytes, round_id: int, name: str, size: int) -> np.ndarray:
    """`size` pseudo-random uint64 words for one parameter of one round."""
    data = hashlib.shake_256(_frame(_MASK_DOMAIN, pair_seed, round_id.to_bytes(8, "big"), name.encode())).digest(8 * size)
    return np.frombuffer(data, dtype="<u8").astype(np.uint64, copy=False)


@dataclass(frozen=True)
class MaskedUpdate:
    """What a client sends: masked fixed-point words per parameter, and its sample count."""

    client_id: str
    round_id: int
    num_samples: int
    params: Mapping[str, np.ndarray]  # uint64, flattened
    shapes: Mapping[str, tuple[int, ...]]

    def __post_init__(self) -> None:
        _check_id(self.client_id)
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples < 1:
            raise InvalidMaskedUpdate(f"num_samples must be a positive integer, got {self.num_samples!r}")
        if isinstance(self.round_id, bool) or not isinstance(self.round_id, int) or not 0 <= self.round_id < 2**64:
            raise InvalidMaskedUpdate(f"round_id must be an unsigned 64-bit integer, got {self.round_id!r}")
        if not isinstance(self.params, Mapping) or not isinstance(self.shapes, Mapping) or set(self.params) != set(self.shapes):
            raise InvalidMaskedUpdate("params and shapes must be mappings over the same parameter names")
        for name, shape in self.shapes.items():
            if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise InvalidMaskedUpdate(f"shape of {name!r} must be a tuple of non-negative ints, got {shape!r}")


def compute_masked_update(
    client_id: str, update: ModelUpdate, pair_seeds: Mapping[str, bytes], round_id: int
) -> MaskedUpdate:
    """Mask one client's update; `pair_seeds` maps every other participant's id to its pair seed."""
    _check_id(client_id)
    if isinstance(round_id, bool) or not isinstance(round_id, int) or not 0 <= round_id < 2**64:
        raise InvalidMaskedUpdate(f"round_id must be an unsigned 64-bit integer, got {round_id!r}")
    peers = sorted(_check_id(p) for p in pair_seeds)
    if client_id in peers:
        raise InvalidMaskedUpdate("a client has no pair seed with itself")
    for peer in peers:
        if not isinstance(pair_seeds[peer], bytes) or len(pair_seeds[peer]) != 32:
            raise InvalidMaskedUpdate(f"pair seed with {peer!r} must be 32 bytes")
    (params,) = check_updates([update])
    bound = (2**63 - 1) / (len(peers) + 1)
    words: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name in sorted(params):
        scaled = params[name].detach().cpu().to(torch.float64).reshape(-1).numpy() * (update.num_samples * _SCALE)
        if scaled.size and float(np.abs(scaled).max()) >= bound:
            raise InvalidMaskedUpdate(f"parameter {name!r} is too large for the fixed-point range of {len(peers) + 1} clients")
        total = np.rint(scaled).astype(np.int64).view(np.uint64)
        for peer in peers:
            mask = compute_mask(pair_seeds[peer], round_id, name, total.size)
            total = total + mask if client_id < peer else total - mask  # uint64 wraps: arithmetic mod 2^64
        words[name] = total
        shapes[name] = tuple(params[name].shape)
    return MaskedUpdate(client_id, round_id, update.num_samples, words, shapes)


def compute_secure_sum(masked: Sequence[MaskedUpdate], participants: Sequence[str]) -> dict[str, np.ndarray]:
    """The modular sum of the masked updates (masks cancelled) as signed 64-bit fixed point."""
    ids = [_check_id(p) for p in participants]
    if len(set(ids)) != len(ids) or not ids:
        raise InvalidMaskedUpdate("participants must be distinct, non-empty")
    got = [m.client_id for m in masked]
    if len(set(got)) != len(got):
        raise InvalidMaskedUpdate("two masked updates from the same client")
    unknown = sorted(set(got) - set(ids))
    if unknown:
        raise InvalidMaskedUpdate(f"masked updates from clients outside the round: {unknown}")
    missing = sorted(set(ids) - set(got))
    if missing:
        raise MaskedClientDropped(
            f"clients {missing} were in the mask set but sent nothing: their masks cannot be removed "
            "(dropout recovery is not implemented); re-run the round without them"
        )
    rounds = {m.round_id for m in masked}
    if len(rounds) != 1:
        raise InvalidMaskedUpdate(f"masked updates from different rounds: {sorted(rounds)}")
    first = masked[0]
    for m in masked[1:]:
        if dict(m.shapes) != dict(first.shapes):
            raise InvalidMaskedUpdate(f"client {m.client_id!r} sent parameters that differ from {first.client_id!r}")
    out = {}
    for name, shape in first.shapes.items():
        size = int(np.prod(shape, dtype=np.int64))
        total = np.zeros(size, dtype=np.uint64)
        for m in masked:
            words = m.params.get(name)
            if not isinstance(words, np.ndarray) or words.dtype != np.uint64 or words.shape != (size,):
                raise InvalidMaskedUpdate(f"client {m.client_id!r} parameter {name!r} is not {size} uint64 words")
            total += words
        out[name] = total.view(np.int64).reshape(shape)
    return out


def compute_secure_average(masked: Sequence[MaskedUpdate], participants: Sequence[str]) -> dict[str, np.ndarray]:
    """FedAvg (sample-weighted) of the clients' updates, seeing only the masked words (float32)."""
    sums = compute_secure_sum(masked, participants)
    total_samples = sum(m.num_samples for m in masked)
    return {name: (s.astype(np.float64) / (total_samples * _SCALE)).astype(np.float32) for name, s in sums.items()}
