"""The CPU backend (always present)."""

from __future__ import annotations

import torch

from bcai.vm.backends.base import Backend


class CpuBackend(Backend):
    name = "cpu"
    torch_device_type = "cpu"

    @classmethod
    def is_available(cls) -> bool:
        return True

    @classmethod
    def describe(cls) -> str:
        return f"{torch.get_num_threads()} threads"
