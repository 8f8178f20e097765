"""In-process news of job changes: who waits on a job is woken when this process changed it.

The database is what every gateway replica shares, so an event stream (``GET /v1/jobs/{id}/events``)
reads the job from there. Reading it every ``events_poll_s`` alone would make a follower see a
step that finished a millisecond ago only up to half a second later, and a tighter poll would
spend the gateway's CPU on reads that find nothing new. So the runner of this process tells a
:class:`JobChanges` whenever it has *written* something of a job (a step claimed, its progress,
its end, a cancel), and the streams of that job read it at once. Changes made by another replica
are still found by the poll, which stays as the fallback: this is a shortcut, never the only
way news arrives, and losing it (a replica restart) costs latency, not correctness.

Everything here runs on the event loop; :meth:`JobChanges.notify` from another thread goes
through ``call_soon_threadsafe``.

Example
-------
>>> import asyncio, uuid
>>> async def demo():
...     changes, job = JobChanges(), uuid.uuid4()
...     with changes.watch(job) as changed:
...         asyncio.get_running_loop().call_later(0.01, changes.notify, job)
...         await asyncio.wait_for(changed.wait(), 5)
...         return changed.is_set(), changes.watchers(job)
>>> asyncio.run(demo())
(True, 1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID


class JobChanges:
    """Job id -> the events of the watchers of that job in this process."""

    def __init__(self) -> None:
        self._watchers: dict[UUID, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextmanager
    def watch(self, job_id: UUID | str) -> Iterator[asyncio.Event]:
        """An event set on every :meth:`notify` of ``job_id`` while the block runs (clear it after reading)."""
        self._loop = asyncio.get_running_loop()
        key = UUID(str(job_id))
        event = asyncio.Event()
        self._watchers.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._watchers.get(key)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._watchers[key]

    def notify(self, job_id: UUID) -> None:
        """Job ``job_id`` changed in the database (this process wrote it). Safe from any thread."""
        watchers = self._watchers.get(job_id)
        if not watchers:
            return
        loop = self._loop
        try:
            on_loop = loop is None or asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            for event in list(watchers):
                event.set()
        elif loop is not None:
            loop.call_soon_threadsafe(self.notify, job_id)

    def watchers(self, job_id: UUID | str) -> int:
        """How many watch ``job_id`` now (for tests and logs)."""
        return len(self._watchers.get(UUID(str(job_id)), ()))
