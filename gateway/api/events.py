"""A job's progress as server-sent events (``GET /v1/jobs/{id}/events``, ``text/event-stream``).

The stream reads the job from the store every ``events_poll_s`` (the step may be running in
another gateway replica: the database is what every replica shares), and at once when this
process's runner says it wrote something of the job (``changed``, from
:class:`~gateway.jobs.changes.JobChanges`), and sends what changed:

``event: job``
    first the whole job (the JSON of ``GET /v1/jobs/{id}``), then again whenever its state changes;
``event: step``
    a step whose state, progress, message or attempts changed: ``{"job_id", "step": <step JSON>}``;
``event: end``
    the job has ended (succeeded, failed or cancelled): the final job; then the stream closes.

Lines starting with ``:`` are heartbeats, every ``events_heartbeat_s`` while nothing changes, so
proxies do not close an idle stream. Each event has an ``id`` (its number in this stream).
Browsers' ``EventSource`` cannot send an ``Authorization`` header; the web page reads the stream
with ``fetch`` instead.

Example
-------
>>> print(format_event("step", {"job_id": "j", "step": {"id": "sim", "progress": 0.5}}, 3), end="")
id: 3
event: step
data: {"job_id":"j","step":{"id":"sim","progress":0.5}}
<BLANKLINE>
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.encoders import jsonable_encoder

_STEP_FIELDS = ("state", "progress", "progress_message", "attempts", "error")


def format_event(event: str, data: Any, event_id: int) -> str:
    payload = json.dumps(jsonable_encoder(data), separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {payload}\n\n"


async def job_events(first: dict[str, Any], read_job: Callable[[], Awaitable[dict[str, Any]]], *, poll_s: float,
                     heartbeat_s: float, closing: asyncio.Event,
                     changed: asyncio.Event | None = None) -> AsyncIterator[str]:
    """The event stream of one job: ``first`` is its JSON view when the stream starts (read before, so a
    missing job is a 404 and not an empty stream); ``read_job()`` answers the current one. ``changed``,
    when given, is set when the job may have changed: the job is read then rather than at the next poll
    (it is cleared before each read, so a change during a read is seen by the next one)."""
    job = first
    event_id = 1
    yield format_event("job", job, event_id)
    last_steps = {s["id"]: {k: s.get(k) for k in _STEP_FIELDS} for s in job["steps"]}
    last_state = job["state"]
    last_sent = time.monotonic()
    while True:
        if job["state"] in ("succeeded", "failed", "cancelled"):
            event_id += 1
            yield format_event("end", job, event_id)
            return
        if await _wait_for_news(closing, changed, poll_s):
            return  # the gateway is stopping: the client reconnects to another replica, or later
        if changed is not None:
            changed.clear()
        job = await read_job()
        for step in job["steps"]:
            now = {k: step.get(k) for k in _STEP_FIELDS}
            if last_steps.get(step["id"]) != now:
                last_steps[step["id"]] = now
                event_id += 1
                last_sent = time.monotonic()
                yield format_event("step", {"job_id": job["id"], "step": step}, event_id)
        if job["state"] != last_state:
            last_state = job["state"]
            if job["state"] not in ("succeeded", "failed", "cancelled"):
                event_id += 1
                last_sent = time.monotonic()
                yield format_event("job", job, event_id)
        if time.monotonic() - last_sent >= heartbeat_s:
            last_sent = time.monotonic()
            yield f": heartbeat {int(time.time())}\n\n"


async def _wait_for_news(closing: asyncio.Event, changed: asyncio.Event | None, poll_s: float) -> bool:
    """Wait until ``changed`` is set or ``poll_s`` has passed; True when ``closing`` came first."""
    if closing.is_set():
        return True
    if changed is not None and changed.is_set():
        return False
    waiters = [asyncio.ensure_future(closing.wait())]
    if changed is not None:
        waiters.append(asyncio.ensure_future(changed.wait()))
    try:
        await asyncio.wait(waiters, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return closing.is_set()
