"""The CUDA backend (NVIDIA GPUs through torch.cuda)."""

from __future__ import annotations

import torch

from bcai.vm.backends.base import Backend


class CudaBackend(Backend):
    name = "cuda"
    torch_device_type = "cuda"
    accelerator = True

    @classmethod
    def is_available(cls) -> bool:
        return torch.cuda.is_available()

    @classmethod
    def describe(cls) -> str:
        if not torch.cuda.is_available():
            built = torch.version.cuda
            return "torch has no CUDA support in this build" if built is None else "no CUDA device visible"
        return f"{torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)}"

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)
        torch.cuda.manual_seed_all(seed)
