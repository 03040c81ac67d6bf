"""Hardware backends: detection and selection.

- `base.py`: `Backend` (device, seeded generator, synchronize, ToGPU target), `BackendInfo`;
- `cpu.py`, `cuda.py`, `mps.py`, `wgpu.py`: one backend each (WGPU is reported unavailable).

`detect_backends()` lists what this node has; `select_backend(requested, requirements)`
picks one: the requested backend if the program accepts it and the node has it, or with
`"auto"` the first of the program's requirements (in its order of preference) that the
node has.
"""

from __future__ import annotations

from bcai.errors import DeviceUnavailable
from bcai.vm.backends.base import Backend, BackendInfo
from bcai.vm.backends.cpu import CpuBackend
from bcai.vm.backends.cuda import CudaBackend
from bcai.vm.backends.mps import MpsBackend
from bcai.vm.backends.wgpu import WgpuBackend

BACKENDS: dict[str, type[Backend]] = {
    "cpu": CpuBackend,
    "cuda": CudaBackend,
    "mps": MpsBackend,
    "wgpu": WgpuBackend,
}


def detect_backends() -> list[BackendInfo]:
    """Every backend bcai knows, with whether this node has it and why (not)."""
    return [cls.info() for cls in BACKENDS.values()]


def select_backend(requested: str = "auto", requirements: tuple[str, ...] = ("cuda", "mps", "cpu")) -> Backend:
    """The backend to run on (raises `DeviceUnavailable` with the reason)."""
    if requested == "auto":
        for name in requirements:
            cls = BACKENDS.get(name)
            if cls is not None and cls.is_available():
                return cls()
        details = "; ".join(f"{n}: {BACKENDS[n].describe()}" for n in requirements if n in BACKENDS)
        raise DeviceUnavailable(f"none of the program's backends {list(requirements)} is available ({details})")
    cls = BACKENDS.get(requested)
    if cls is None:
        raise DeviceUnavailable(f"unknown backend {requested!r} (known: {', '.join(BACKENDS)})")
    if requested not in requirements:
        raise DeviceUnavailable(f"the program accepts only {list(requirements)}, not {requested!r}")
    return cls()


__all__ = ["BACKENDS", "Backend", "BackendInfo", "detect_backends", "select_backend"]
