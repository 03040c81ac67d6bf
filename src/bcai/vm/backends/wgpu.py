"""The WGPU backend: reported, never available.

PyTorch has no WebGPU device, and bcai ships no WGPU kernels, so a program that asks
only for `wgpu` gets a clear `DeviceUnavailable` instead of a silent fallback.
"""

from __future__ import annotations

from bcai.vm.backends.base import Backend


class WgpuBackend(Backend):
    name = "wgpu"
    torch_device_type = "cpu"

    @classmethod
    def is_available(cls) -> bool:
        return False

    @classmethod
    def describe(cls) -> str:
        return "no WGPU backend: PyTorch has no WebGPU device and bcai ships no WGPU kernels"
