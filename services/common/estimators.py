"""Checks and device choice shared by the estimators of every service's core.

The estimators (decoders, reducers) validate their constructor parameters when they fit, with
messages that name the parameter and the allowed range, and the torch ones pick their device
the same way: ``"auto"`` means CUDA when torch sees a GPU, else the CPU. The torch ones with a
validation split keep their best epoch and stop early the same way too, with :class:`BestEpoch`.

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

__all__ = ["check_count", "check_real", "check_hidden_sizes", "resolve_device", "BestEpoch", "DEVICES"]

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


class BestEpoch:
    """Early-stopping bookkeeping: the best validation epoch, its weights, and when to stop.

    After each epoch the training loop passes the epoch's validation value to :meth:`update`.
    A value *strictly* better than every earlier one (lower, or higher with
    ``higher_is_better=True``; NaN never is) makes that epoch the best and snapshots the
    module's ``state_dict`` (detached clones). Otherwise :meth:`update` returns True, meaning
    "stop now", once ``patience`` epochs have passed since the best one, unless the caller
    passes ``may_stop=False`` (e.g. while a KL warm-up is still changing the objective). Before
    any epoch has been the best it never says stop. Epochs without a validation value (say,
    during a ramp) are simply not passed; ``epoch`` is the loop's own 0-based index.

    :meth:`restore` loads the best weights back into the module and returns the epoch whose
    weights the module then holds: the best one, or ``last_epoch`` when none was recorded (no
    validation, or no value ever improved on the starting ``inf``/``-inf``).
    :meth:`stop_message` is the fragment the progress report appends when stopping.

    Example
    -------
    >>> import torch
    >>> net = torch.nn.Linear(1, 1, bias=False)
    >>> tracker = BestEpoch(patience=2)
    >>> stops = []
    >>> for epoch, loss in enumerate([3.0, 1.0, 2.0, 2.5, 0.5]):
    ...     with torch.no_grad():
    ...         _ = net.weight.fill_(float(epoch))
    ...     stops.append(tracker.update(epoch, loss, net))
    ...     if stops[-1]:
    ...         break
    >>> stops, tracker.best_epoch, tracker.best_value
    ([False, False, False, True], 1, 1.0)
    >>> tracker.stop_message()
    '; stopping early, keeping epoch 2'
    >>> tracker.restore(net, last_epoch=epoch), net.weight.item()
    (1, 1.0)
    >>> elbo = BestEpoch(patience=1, higher_is_better=True)
    >>> elbo.update(0, -5.0, net), elbo.update(1, -6.0, net, may_stop=False), elbo.update(2, -7.0, net)
    (False, False, True)
    >>> BestEpoch(patience=1).restore(net, last_epoch=4)  # nothing recorded: the module is left as is
    4
    """

    def __init__(self, patience: int, *, higher_is_better: bool = False) -> None:
        self.patience = check_count(patience, "patience", 1)
        self.higher_is_better = bool(higher_is_better)
        self.best_value = -math.inf if self.higher_is_better else math.inf
        self.best_epoch: int | None = None
        self._best_state: dict | None = None

    def update(self, epoch: int, value: float, module, *, may_stop: bool = True) -> bool:
        """Record ``epoch``'s validation ``value``; True when training should stop after it."""
        better = value > self.best_value if self.higher_is_better else value < self.best_value
        if better:
            self.best_value, self.best_epoch = value, epoch
            self._best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return False
        return may_stop and self.best_epoch is not None and epoch - self.best_epoch >= self.patience

    def stop_message(self) -> str:
        """The progress-report fragment for stopping early (after a True from :meth:`update`)."""
        return f"; stopping early, keeping epoch {self.best_epoch + 1}"

    def restore(self, module, *, last_epoch: int) -> int:
        """Load the best epoch's weights into ``module``; the 0-based epoch whose weights it holds."""
        if self._best_state is None:
            return last_epoch
        module.load_state_dict(self._best_state)
        return self.best_epoch
