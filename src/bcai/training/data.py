"""Datasets for jobs: the digits set, deterministic shards, and encrypted artifacts (shell).

A job's data travels as two artifacts, each the canonical tensor bytes of `{"x", "y"}`
encrypted with its own 32-byte key (XSalsa20-Poly1305, libsodium's secretbox): the
training split, whose key is sealed to each assigned worker, and the test split, whose
key is sealed to each of the job's evaluators. Artifacts are addressed by the CID of the
ciphertext, so anyone may store and relay them without learning the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
import nacl.utils
import numpy as np
import torch

from bcai.errors import DecryptionFailed, InvalidDataset
from bcai.vm.tensors import decode_tensors, encode_tensors

KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # features, float32
    y: np.ndarray  # integer class labels, int64

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise InvalidDataset(f"features and labels need the same non-zero length, got {len(self.x)}, {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, indices: np.ndarray) -> Dataset:
        return Dataset(self.x[indices], self.y[indices])


def load_digits_splits(test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """scikit-learn's bundled 8x8 digits (offline), scaled to [0, 1], shaped (N, 1, 8, 8),
    split into stratified train and test sets."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                        stratify=y)
    return Dataset(x_train, y_train), Dataset(x_test, y_test)


def compute_shard(n_samples: int, workers: list[str], worker: str, round_index: int, seed: int) -> np.ndarray:
    """The sample indices `worker` trains on in a round: a permutation fixed by (seed, round)
    cut into equal contiguous parts, one per live worker in sorted order. When a worker
    drops out, the survivors' parts grow to cover its data from the next round on."""
    live = sorted(workers)
    if worker not in live:
        raise InvalidDataset(f"{worker} is not one of the round's workers")
    order = np.random.default_rng([seed, round_index]).permutation(n_samples)
    return np.array_split(order, len(live))[live.index(worker)]


def encode_dataset(dataset: Dataset) -> bytes:
    return encode_tensors({"x": torch.from_numpy(np.ascontiguousarray(dataset.x)),
                           "y": torch.from_numpy(np.ascontiguousarray(dataset.y))})


def decode_dataset(data: bytes) -> Dataset:
    tensors = decode_tensors(data)
    if set(tensors) != {"x", "y"}:
        raise InvalidDataset(f"a dataset artifact holds tensors x and y, got {sorted(tensors)}")
    x, y = tensors["x"].numpy(), tensors["y"].numpy()
    if x.dtype != np.float32 or y.dtype != np.int64:
        raise InvalidDataset(f"dataset dtypes must be float32 features and int64 labels, got {x.dtype}, {y.dtype}")
    if x.ndim < 1 or y.ndim != 1:
        raise InvalidDataset(f"a dataset has features of shape (N, ...) and labels of shape (N,), got {list(x.shape)}, "
                             f"{list(y.shape)}")
    return Dataset(x, y)


def new_data_key() -> bytes:
    return nacl.utils.random(KEY_SIZE)


def encrypt_artifact(plaintext: bytes, key: bytes) -> bytes:
    return bytes(nacl.secret.SecretBox(key).encrypt(plaintext))


def decrypt_artifact(ciphertext: bytes, key: bytes) -> bytes:
    try:
        return nacl.secret.SecretBox(key).decrypt(ciphertext)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptionFailed("artifact does not decrypt with this key") from None
