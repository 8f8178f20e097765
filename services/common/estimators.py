"""Checks and device choice shared by the estimators of every service's core.

The estimators (decoders, reducers) validate their constructor parameters when they fit, with
messages that name the parameter and the allowed range, and the torch ones pick their device
the same way: ``"auto"`` means CUDA when torch sees a GPU, else the CPU.

Example
-------
>>> check_count(3, "epochs", 1)
3
>>> check_real(0.5, "dropout", low=0.0, high=1.0)
0.5
>>> check_real(1.0, "dropout", low=0.0, high=1.0)
Traceback (most recent call last):
...
ValueError: dropout must be a finite number in [0, 1), got 1.0
>>> check_hidden_sizes([64, 32])
(64, 32)
>>> resolve_device("cpu", fitting=True).type
'cpu'
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only by the estimators that use it
    import torch

__all__ = ["check_count", "check_real", "check_hidden_sizes", "resolve_device", "DEVICES"]

DEVICES = ("auto", "cpu", "cuda")


def check_count(value, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools refused), else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(value, name: str, *, low: float, high: float = math.inf, low_open: bool = False,
               high_open: bool = True) -> float:
    """``value`` as a finite float in the interval (``low_open``/``high_open`` exclude the ends)."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and (value > low if low_open else value >= low) and (value < high if high_open else value <= high))
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return float(value)


def check_hidden_sizes(hidden_sizes) -> tuple[int, ...]:
    """Layer widths as a non-empty tuple of positive ints."""
    if isinstance(hidden_sizes, (str, bytes)) or not hasattr(hidden_sizes, "__iter__"):
        raise ValueError(f"hidden_sizes must be a sequence of layer widths, got {hidden_sizes!r}")
    sizes = tuple(hidden_sizes)
    if not sizes:
        raise ValueError("hidden_sizes must name at least one hidden layer, got ()")
    return tuple(check_count(s, f"hidden_sizes[{i}]", 1) for i, s in enumerate(sizes))


def resolve_device(device, *, fitting: bool) -> "torch.device":
    """``"auto"`` -> CUDA when available, else CPU.

    Asking for CUDA without one is an error when fitting; a saved model loads on the CPU
    instead, so a model trained on a GPU can still be served from a machine without one.
    """
    import torch

    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if device == "cuda" and fitting:
        raise ValueError("device='cuda' but torch sees no CUDA device (use device='auto' or 'cpu')")
    return torch.device("cpu")
