"""Validation at the public boundary: errors that name what was expected and what was given.

The two error classes are also the classes torch.nn raises for the same mistake, so code
written against torch.nn (``except RuntimeError``, ``assertRaises(ValueError)``) catches them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class TensorError(ValueError, RuntimeError):
    """A tensor of the wrong rank, size, length or device. A ValueError, rnnlab's convention,
    and a RuntimeError, which torch.nn raises for wrong sizes (input features, h_0 shape,
    batch mismatch, zero time steps)."""


class DtypeError(TypeError, ValueError, RuntimeError):
    """A tensor of the wrong dtype. A TypeError (rnnlab's convention), the ValueError torch.nn
    raises when input and weights differ, and the RuntimeError it raises when states differ."""


def check_tensor(name: str, value, *, dims: tuple[int, ...]) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise TensorError(f"{name} must be {want}, got a {value.dim()}-D tensor of shape "
                         f"{tuple(value.shape)}")
    return value


def check_like(name: str, value: Tensor, ref: Tensor, ref_name: str) -> None:
    """Same dtype and device as ``ref`` (the parameters, or the input)."""
    if value.dtype != ref.dtype:
        raise DtypeError(f"{name} has dtype {value.dtype} but {ref_name} has dtype {ref.dtype}; "
                         f"convert one of them (e.g. module.to({value.dtype}))")
    if value.device != ref.device:
        raise TensorError(f"{name} is on {value.device} but {ref_name} is on {ref.device}; "
                          "move them to the same device")


def check_float(name: str, value: Tensor) -> None:
    if not value.is_floating_point():
        raise DtypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")


def check_shape(name: str, value: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(value.shape) != tuple(expected):
        raise TensorError(f"{name} must have shape {tuple(expected)}, got {tuple(value.shape)}")


def check_lengths(lengths, batch: int, T: int) -> Tensor:
    """A 1-D integer tensor (or sequence) of B lengths, each in 1..T."""
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"lengths must be a 1-D integer tensor, got {type(lengths).__name__}"
                            ) from e
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"lengths must be 1-D with one entry per sequence (batch size {batch}), "
                         f"got shape {tuple(lengths.shape)}")
    lengths = lengths.to("cpu", torch.int64)
    if batch == 0:
        return lengths
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1:
        raise ValueError(f"every length must be at least 1, got {lo}")
    if hi > T:
        raise ValueError(f"a length ({hi}) exceeds the number of time steps in the input ({T})")
    return lengths


def check_int(name: str, value, *, low: int = 1) -> int:
    """An int (not a bool) of at least ``low``; the wording is torch.nn's."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value < low:
        bound = "greater than zero" if low == 1 else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_positive_int(name: str, value) -> int:
    return check_int(name, value, low=1)


def check_strict_bool(name: str, value) -> bool:
    """True or False only, as torch.nn's constructors demand of ``bias`` and ``batch_first``:
    ``batch_first="False"`` must not silently mean True (a transposed layout)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    return value


def check_bool(name: str, value) -> bool:
    """A yes/no option: True or False (1 and 0 too); anything else, e.g. the string "maybe",
    is a TypeError naming the option rather than a silent truth value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be true or false, got {value!r}")


def check_number(name: str, value, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in [low, high] (an open end with ``low_open`` / ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low) or (
            high_open and value == high):
        if low == 0 and high == math.inf and not low_open:
            raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return float(value)


def check_positive_number(name: str, value) -> float:
    """A finite number > 0 (learning rates, clipping norms, budgets)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)
