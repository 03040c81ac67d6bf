"""ONNX Resize as one interpolation matrix per resized axis.

Every Resize mode (nearest, linear, cubic, antialias, exclude_outside) is linear in the data
and separable by axis, so along one axis it is `y = W @ x`: W is (output length x input
length); where tf_crop_and_resize samples outside the input (`outside`), y is
`extrapolation_value` instead.
The matrices come from the ONNX reference's own 1-D resize applied to the identity (its
columns are the images of the unit vectors), so the coordinate transformations, rounding
modes and cubic/antialias kernels are the spec's, not a re-derivation; the front end then
emits one Einsum (and Add) per axis. The reference computes in float64; the VM applies the
matrices in the input's dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from bcai.errors import InvalidModel, UnsupportedOperators

try:  # the reference implementation ships with onnx; its helpers are private
    from onnx.reference.ops import op_resize as _reference
except ImportError:  # pragma: no cover - an onnx without it
    _reference = None  # type: ignore[assignment]
_HELPERS = ("_nearest_coeffs", "_linear_coeffs", "_linear_coeffs_antialias", "_cubic_coeffs",
            "_cubic_coeffs_antialias", "_interpolate_1d_along_axis")
if _reference is not None and not all(hasattr(_reference, name) for name in _HELPERS):  # pragma: no cover
    _reference = None  # type: ignore[assignment]  # private helpers renamed: refuse Resize, do not crash

AxisPlan = tuple[int, np.ndarray, np.ndarray | None]  # axis, W, the rows outside the input (or None)


def _coefficients(a: dict[str, Any]) -> Callable[[float, float], np.ndarray]:
    """The kernel of `mode`: weights for the neighbours of a sample at fractional `ratio`."""
    mode, antialias = a["mode"], a["antialias"]
    if mode == "nearest":
        if antialias:
            raise InvalidModel("Resize: antialias does not apply to mode nearest")
        return lambda ratio, scale: _reference._nearest_coeffs(ratio, mode=a["nearest_mode"])
    if mode == "linear":
        return _reference._linear_coeffs_antialias if antialias else _reference._linear_coeffs  # type: ignore[no-any-return]
    if mode == "cubic":
        cubic = _reference._cubic_coeffs_antialias if antialias else _reference._cubic_coeffs
        return lambda ratio, scale: cubic(ratio, scale, A=a["cubic_coeff_a"])
    raise InvalidModel(f"Resize: unknown mode {mode!r}")


def _targets(shape: tuple[int, ...], axes: list[int], scales: np.ndarray | None, sizes: np.ndarray | None,
             policy: str) -> tuple[list[float], list[int]]:
    """Scale and output length of every axis, as the reference derives them."""
    rank = len(shape)
    if scales is not None:
        factors = [1.0] * rank
        for axis, s in zip(axes, scales):
            factors[axis] = float(s)
        if any(not math.isfinite(f) or f <= 0 for f in factors):
            raise InvalidModel(f"Resize: scales must be positive and finite, got {list(scales)}")
        return factors, [int(f * d) for f, d in zip(factors, shape)]
    assert sizes is not None
    lengths = list(shape)
    for axis, n in zip(axes, sizes):
        lengths[axis] = int(n)
    if any(n < 0 for n in lengths) or any(d == 0 for d in shape):
        raise InvalidModel(f"Resize: sizes {list(sizes)} of an input {list(shape)}")
    factors = [n / d for n, d in zip(lengths, shape)]
    if policy == "stretch":
        return factors, lengths
    if policy not in ("not_larger", "not_smaller"):
        raise InvalidModel(f"Resize: unknown keep_aspect_ratio_policy {policy!r}")
    scale = (min if policy == "not_larger" else max)(factors[axis] for axis in axes)
    factors = [scale if k in axes else 1.0 for k in range(rank)]
    return factors, [int(scale * d + 0.5) if k in axes else d for k, d in enumerate(shape)]


def compute_resize_plan(shape: tuple[int, ...], a: dict[str, Any], roi: np.ndarray | None,
                        scales: np.ndarray | None, sizes: np.ndarray | None, max_bytes: int) -> list[AxisPlan]:
    """(axis, W, outside) for every axis the Resize changes; `a` holds its attributes with the
    spec's defaults. Refuses matrices larger than `max_bytes` before building them."""
    if _reference is None:  # pragma: no cover
        raise UnsupportedOperators("Resize (this onnx has no reference resize to take its kernels from)")
    rank = len(shape)
    axes = [int(v) % rank if -rank <= int(v) < rank else -1 for v in a["axes"]] if a["axes"] else list(range(rank))
    if -1 in axes or len(set(axes)) != len(axes):
        raise InvalidModel(f"Resize: axes {a['axes']} for rank {rank}")
    given = scales if scales is not None and scales.size else None
    wanted = sizes if sizes is not None and sizes.size else None
    if (given is None) == (wanted is None) or len(given if given is not None else wanted) != len(axes):  # type: ignore[arg-type]
        raise InvalidModel("Resize: exactly one of scales and sizes, one value per resized axis")
    factors, lengths = _targets(shape, axes, given, wanted, a["keep_aspect_ratio_policy"])
    full_roi: list[Any] | None = None
    if roi is not None and roi.size:
        if roi.size != 2 * len(axes):
            raise InvalidModel(f"Resize: roi has {roi.size} values for {len(axes)} axes")
        # The roi keeps its dtype: the reference's arithmetic on its (float32) scalars decides
        # which side a nearest sample at exactly .5 falls on.
        full_roi = [0.0] * rank + [1.0] * rank
        for k, axis in enumerate(axes):
            full_roi[axis], full_roi[rank + axis] = roi.reshape(-1)[k], roi.reshape(-1)[len(axes) + k]
    coefficients = _coefficients(a)
    plan = []
    for axis in axes:
        n_in, n_out, scale = shape[axis], lengths[axis], factors[axis]
        axis_roi = None if full_roi is None else [full_roi[axis], full_roi[rank + axis]]
        if math.isclose(scale, 1.0) and n_out == n_in and (axis_roi is None or (
                math.isclose(axis_roi[0], 0.0) and math.isclose(axis_roi[1], 1.0))):
            continue  # the identity along this axis, as the reference skips it
        if n_out * max(n_in, 1) * 8 > max_bytes:
            raise InvalidModel(f"Resize: a {n_out} x {n_in} interpolation matrix is over the program's memory "
                               f"limit ({max_bytes} bytes)")

        def along(data: np.ndarray, extrapolated: float) -> np.ndarray:
            return _reference._interpolate_1d_along_axis(  # type: ignore[no-any-return]
                data, 0, scale, n_out, coefficients, roi=axis_roi, extrapolation_value=extrapolated,
                coordinate_transformation_mode=a["coordinate_transformation_mode"],
                exclude_outside=bool(a["exclude_outside"]))

        outside = along(np.zeros((n_in, 1)), 1.0)[:, 0] != 0  # only extrapolated rows are nonzero
        plan.append((axis, along(np.eye(n_in), 0.0), outside if outside.any() else None))
    return plan
