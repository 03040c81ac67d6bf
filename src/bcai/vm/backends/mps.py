"""The Metal (MPS) backend on Apple silicon."""

from __future__ import annotations

import torch

from bcai.vm.backends.base import Backend


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


class MpsBackend(Backend):
    name = "mps"
    torch_device_type = "mps"
    accelerator = True

    @classmethod
    def is_available(cls) -> bool:
        return _mps_available()

    @classmethod
    def describe(cls) -> str:
        return "Apple Metal device" if _mps_available() else "no Metal (MPS) device (needs macOS on Apple silicon)"

    def synchronize(self) -> None:
        torch.mps.synchronize()

    def seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)
        torch.mps.manual_seed(seed)
