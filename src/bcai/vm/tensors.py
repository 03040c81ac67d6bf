"""Tensors as canonical bytes, and the tensor manager of a loaded program.

`encode_tensors({id: tensor})` is the canonical CBOR map `{id: {"dtype", "shape",
"data"}}` (data = raw little-endian bytes, row-major): how parameters travel for
checkpoints and federated averaging, and what `compute_tensors_hash` hashes.

`TensorManager` owns the state of a loaded program (parameters, buffers, optimizer
state): each state id has a fixed slot, a dtype, a shape and a device. Entry runs
borrow the state list; temporaries live in the run's slot list and are freed after their
last use (see `plan.py`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from bcai.crypto import Cid
from bcai.crypto.cid import CODEC_DAG_CBOR
from bcai.crypto.objects import compute_artifact_cid
from bcai.encoding import decode, encode
from bcai.errors import EncodingError, InvalidFeed, MalformedProgram
from bcai.vm.kernels import DTYPE_NAMES, TORCH_DTYPES, bytes_to_tensor, tensor_to_bytes


def as_tensor(value: Any) -> torch.Tensor:
    """A torch tensor from a tensor, numpy array or nested list (numpy arrays keep their dtype)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        # np.ascontiguousarray makes a 0-d array 1-d; keep the shape (a scalar feed stays a scalar).
        arr = np.asarray(value)
        return torch.from_numpy(np.ascontiguousarray(arr).reshape(arr.shape))
    return torch.as_tensor(value)


def encode_tensors(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """Canonical bytes of named tensors."""
    return encode({name: {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data": tensor_to_bytes(t)}
                   for name, t in tensors.items()})


def decode_tensors(data: bytes) -> dict[str, torch.Tensor]:
    """Named tensors from `encode_tensors` bytes (CPU tensors)."""
    try:
        obj = decode(data)
    except EncodingError as exc:
        raise MalformedProgram(f"tensor bytes are not canonical CBOR: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedProgram("tensor bytes must hold a map of id -> tensor")
    out = {}
    for name, item in obj.items():
        if not isinstance(item, dict) or set(item) != {"dtype", "shape", "data"} or item["dtype"] not in TORCH_DTYPES \
                or not isinstance(item["shape"], list) or not all(isinstance(d, int) and d >= 0 for d in item["shape"]) \
                or not isinstance(item["data"], bytes):
            raise MalformedProgram(f"tensor {name!r}: expected {{dtype, shape, data}}")
        out[name] = bytes_to_tensor(item["data"], item["dtype"], tuple(item["shape"]))
    return out


def compute_tensors_hash(tensors: Mapping[str, torch.Tensor]) -> Cid:
    """Content id of the canonical bytes of named tensors (bitwise: any change shows): the
    artifact id they are uploaded under (`compute_artifact_cid`: a manifest's CID beyond 4 MiB)."""
    return compute_artifact_cid(encode_tensors(tensors), CODEC_DAG_CBOR)


class TensorManager:
    """The state tensors of a loaded program, by id and slot."""

    def __init__(self, ids: tuple[str, ...], tensors: list[torch.Tensor], device: torch.device) -> None:
        self.ids = ids
        self.slots = {name: i for i, name in enumerate(ids)}
        self.tensors = tensors
        self.device = device

    def get(self, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Detached CPU copies of the named state tensors."""
        return {n: self.tensors[self.slots[n]].detach().to("cpu", copy=True) for n in names}

    def set(self, values: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        """Overwrite state tensors in place; all checks happen before any write."""
        prepared = []
        for name, value in values.items():
            if name not in allowed:
                raise InvalidFeed(f"{name!r} is not one of the settable state ids {list(allowed)}")
            current = self.tensors[self.slots[name]]
            new = as_tensor(value)
            if tuple(new.shape) != tuple(current.shape) or new.dtype != current.dtype:
                raise InvalidFeed(f"{name!r}: got {DTYPE_NAMES.get(new.dtype)} {list(new.shape)}, state is "
                                  f"{DTYPE_NAMES[current.dtype]} {list(current.shape)}")
            prepared.append((current, new))
        with torch.no_grad():
            for current, new in prepared:
                current.copy_(new.to(current.device))

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)
