"""The hardware backend base class: what the interpreter needs from a device.

One file per backend (`cpu.py`, `cuda.py`, `mps.py`, `wgpu.py`); `__init__.py` detects
them and picks one from the program's requirements and what the node has.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bcai.errors import DeviceUnavailable


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What detection reports for one backend."""

    name: str
    available: bool
    detail: str


class Backend:
    """A place tensors live and kernels run. Subclasses set `name` and implement
    `is_available` / `describe`; the defaults suit any torch device."""

    name: str = ""
    torch_device_type: str = ""
    accelerator: bool = False

    @classmethod
    def is_available(cls) -> bool:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> str:
        raise NotImplementedError

    @classmethod
    def info(cls) -> BackendInfo:
        return BackendInfo(cls.name, cls.is_available(), cls.describe())

    def __init__(self) -> None:
        if not self.is_available():
            raise DeviceUnavailable(f"backend {self.name!r} is not available on this node: {self.describe()}")
        self.device = torch.device(self.torch_device_type)

    def make_generator(self, seed: int) -> torch.Generator:
        """A generator on this device, seeded (dropout masks are drawn on the device)."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return gen

    def synchronize(self) -> None:
        """Wait for queued kernels (so wall time covers the work)."""

    def accelerator_device(self) -> torch.device:
        """Where `ToGPU` moves tensors; raises on a backend without an accelerator."""
        if not self.accelerator:
            raise DeviceUnavailable(f"ToGPU needs an accelerator, but this VM runs on the {self.name} backend")
        return self.device

    def seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)
