"""Run blocking work in a thread while a server-streaming RPC streams its progress.

The core packages are plain, synchronous functions; they accept a callback to report progress.
:func:`stream_progress` runs such a function in a worker thread, turns each report into a
``Progress`` message for the stream, and, when the client cancels the call, makes the next
report raise :class:`~services.common.errors.Cancelled` inside the worker, so the computation
stops at its next checkpoint and its memory is freed.

Example
-------
>>> import asyncio
>>> def work(report):
...     for i in range(3):
...         report(fraction_done=(i + 1) / 3, stage="step", message=f"step {i + 1} of 3")
...     return "done"
>>> async def consume():
...     events = [e async for e in stream_progress(work)]
...     return [e.progress.stage for e in events[:-1]], events[-1].result
>>> asyncio.run(consume())
(['step', 'step', 'step'], 'done')
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Mapping

from neuromesh.common.v1 import progress_pb2

from .errors import Cancelled


class ProgressReporter:
    """The callback handed to the work function: ``report(fraction_done=..., stage=..., ...)``.

    Every call is a cancellation checkpoint: it raises ``Cancelled`` once the call is cancelled.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        self._loop = loop
        self._queue = queue
        self.cancelled = threading.Event()

    def __call__(self, *, fraction_done: float, stage: str = "", message: str = "",
                 counters: Mapping[str, float] | None = None) -> None:
        self.check_cancelled()
        event = progress_pb2.Progress(fraction_done=min(max(float(fraction_done), 0.0), 1.0), stage=stage,
                                      message=message, counters={k: float(v) for k, v in (counters or {}).items()})
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ("progress", event))

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the call was cancelled by the client")


@dataclass
class StreamEvent:
    """Either a progress event or, last, the work function's result."""

    progress: progress_pb2.Progress | None = None
    result: Any = None


async def stream_progress(work: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[StreamEvent]:
    """Run ``work(report, *args, **kwargs)`` in a thread; yield its progress, then its result.

    An exception in ``work`` is raised here, after the progress it reported. If the consumer
    stops (the RPC is cancelled), the worker is told to stop and is awaited before returning,
    so nothing keeps computing for a caller who left.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    reporter = ProgressReporter(loop, queue)

    def run() -> None:
        try:
            outcome = ("result", work(reporter, *args, **kwargs))
        except BaseException as exc:  # handed to the event loop and raised there
            outcome = ("error", exc)
        loop.call_soon_threadsafe(queue.put_nowait, outcome)

    worker = loop.run_in_executor(None, run)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "progress":
                yield StreamEvent(progress=value)
            elif kind == "result":
                yield StreamEvent(result=value)
                return
            else:
                raise value
    finally:
        if not worker.done():
            reporter.cancelled.set()
            # Wait for the worker to reach its next checkpoint, so its memory is released now;
            # shielded so a second cancellation does not leave it running unobserved.
            await asyncio.shield(worker)
