"""Progress of the long calls: a tqdm bar in terminals and notebooks, and a callback.

The long RPCs (Train, Fit, Simulate, TrainBoundaryModel, Segment, DiffusionConnectome,
ContactGraph) stream ``neuromesh.common.v1.Progress`` events: the fraction done, a stage name
(``"simulate"``, ``"fold"``, ``"store"``), a message and domain counters
(``simulated_ms``, ``spikes``). :class:`ProgressReporter` turns them into

* a bar from ``tqdm.auto`` (a widget in Jupyter, text in a terminal), shown when stderr is a
  terminal or the code runs in a notebook kernel, never when ``show=False``; it appears with the
  first event, so a call answered at once from stored results draws nothing;
* a call of ``callback(event)`` with a :class:`ProgressEvent` for each event, for GUIs, logs or
  acquisition software. An exception raised by the callback cancels the call (the service stops
  its work) and propagates: a "stop" button can simply raise.

Example
-------
>>> from neuromesh.common.v1.progress_pb2 import Progress
>>> seen = []
>>> with ProgressReporter("simulation.Simulate", show=False, callback=seen.append) as reporter:
...     reporter.progress(Progress(fraction_done=0.25, stage="simulate", counters={"simulated_ms": 250.0}))
>>> seen[0].fraction, seen[0].stage, seen[0].counters["simulated_ms"]
(0.25, 'simulate', 250.0)
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Mapping

import grpc

__all__ = ["ProgressCallback", "ProgressEvent", "ProgressReporter", "format_counters", "interactive"]

#: Counters shown after the bar (when the event has no message); the callback gets all of them.
MAX_COUNTERS_SHOWN = 3
MAX_MESSAGE_CHARS = 48
#: Width the stage name is padded to in the bar's label ("connectivity" and "fixed_points" fit)
STAGE_WIDTH = 12


@dataclass(frozen=True)
class ProgressEvent:
    """One progress event of a long call, as the callback receives it.

    Attributes
    ----------
    service, method : str
        The call (``"simulation"``, ``"Simulate"``).
    fraction : float
        Fraction of the work done, in [0, 1].
    stage : str
        Machine-readable stage (``"load"``, ``"fit"``, ``"simulate"``, ``"store"``).
    message : str
        Human-readable message.
    counters : dict of str to float
        Domain counters so far, base units (``{"simulated_ms": 120.0, "spikes": 4312.0}``).
    attempt : int
        1, or the retry's number after the call was sent again.

    Examples
    --------
    >>> event = ProgressEvent("decoding", "Train", 0.5, "fold", "fold 3 of 5", {"folds_done": 2.0})
    >>> f"{event.fraction:.0%} {event.stage}"
    '50% fold'
    """

    service: str
    method: str
    fraction: float
    stage: str
    message: str
    counters: Mapping[str, float] = field(default_factory=dict)
    attempt: int = 1


ProgressCallback = Callable[[ProgressEvent], Any]


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether a progress bar would be seen: stderr is a terminal, or this is a notebook kernel.

    Examples
    --------
    >>> import io
    >>> interactive(io.StringIO())
    False
    """
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # closed or replaced streams
        pass
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    # a kernel (Jupyter, VS Code) has an IPKernelApp config; a terminal IPython was caught above
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 10_000:
        return str(int(value))
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def format_counters(counters: Mapping[str, float], limit: int = MAX_COUNTERS_SHOWN) -> str:
    """Counters in a few characters each: SI prefixes, at most ``limit`` of them.

    Examples
    --------
    >>> format_counters({"simulated_ms": 1500.0, "spikes": 2_345_678.0, "synaptic_events": 9.1e9, "extra": 1.0})
    'simulated_ms=1500 spikes=2.35M synaptic_events=9.1G'
    """
    return " ".join(f"{name}={_number(float(value))}" for name, value in list(counters.items())[:limit])


class ProgressReporter:
    """Draws the progress of one long call and forwards each event to a callback.

    Parameters
    ----------
    description : str
        Label of the bar (``"simulation.Simulate"``).
    show : bool, optional
        True: draw a bar; False: never; None: when :func:`interactive`.
    callback : callable, optional
        Called with a :class:`ProgressEvent` per event, in the calling thread.
    file : file-like, optional
        Where the bar is written (default stderr).
    service, method : str
        Copied into the events.
    bar_factory : callable, optional
        Makes the bar (``tqdm.auto.tqdm`` by default); takes tqdm's keyword arguments.

    Examples
    --------
    >>> import io
    >>> from neuromesh.common.v1.progress_pb2 import Progress
    >>> out = io.StringIO()
    >>> reporter = ProgressReporter("reduction.Fit", show=True, file=out)
    >>> reporter.progress(Progress(fraction_done=0.5, stage="fit", message="PCA"))
    >>> reporter.close("done")
    >>> "reduction.Fit fit" in out.getvalue() and "100%" in out.getvalue()
    True
    """

    def __init__(self, description: str, *, show: bool | None = None, callback: ProgressCallback | None = None,
                 file: IO[str] | None = None, service: str = "", method: str = "",
                 bar_factory: Callable[..., Any] | None = None) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"on_progress must be callable, got {type(callback).__name__}")
        self.description = description
        self.show = interactive(file) if show is None else bool(show)
        self.callback = callback
        self.file = file
        self.service, self.method = service, method
        self.bar_factory = bar_factory
        self.attempt = 1
        self.events = 0
        self._bar: Any = None

    def __enter__(self) -> "ProgressReporter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("done" if exc_type is None else ("cancelled" if issubclass(exc_type, KeyboardInterrupt)
                                                      else "failed"))

    def _make_bar(self) -> Any:
        factory = self.bar_factory
        if factory is None:
            from tqdm.auto import tqdm as factory  # tqdm.auto: the widget in notebooks, text elsewhere
        return factory(total=100.0, desc=self.description, file=self.file, leave=True, dynamic_ncols=True,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")

    def progress(self, event: Any) -> None:
        """Take one ``Progress`` message (or anything with its fields)."""
        fraction = float(event.fraction_done)
        fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
        counters = dict(event.counters)
        self.events += 1
        if self.show:
            if self._bar is None:
                self._bar = self._make_bar()
            bar = self._bar
            # set rather than add: a stage may restart the fraction, and a retry starts over
            bar.n = round(100.0 * fraction, 2)
            # the stage padded to one width, so that the bar does not jump when the stage changes
            bar.set_description_str(f"{self.description} {event.stage:<{STAGE_WIDTH}}", refresh=False)
            # the service's message when it sends one (it usually states the counters in words), else
            # the counters: both would squeeze the bar to nothing
            text = event.message or format_counters(counters)
            if len(text) > MAX_MESSAGE_CHARS:
                text = text[:MAX_MESSAGE_CHARS - 1] + "…"
            bar.set_postfix_str(text, refresh=False)
            bar.refresh()
        if self.callback is not None:
            self.callback(ProgressEvent(self.service, self.method, fraction, event.stage, event.message, counters,
                                        self.attempt))

    def retrying(self, attempt: int, code: grpc.StatusCode, wait_s: float) -> None:
        """The call failed with ``code`` and is sent again in ``wait_s`` seconds."""
        self.attempt = attempt + 1
        if self._bar is not None:
            self._bar.write(f"{self.description}: {code.name}, sending the request again in {wait_s:.1f} s")
            self._bar.n = 0
            self._bar.refresh()

    def close(self, outcome: str = "done") -> None:
        """End the bar: full when ``outcome`` is "done", marked otherwise ("cancelled", "failed")."""
        bar, self._bar = self._bar, None
        if bar is None:
            return
        if outcome == "done":
            bar.n = 100.0
            bar.set_description_str(self.description, refresh=False)
        else:
            bar.set_postfix_str(outcome, refresh=False)
        bar.refresh()
        bar.close()
