"""A job's progress as server-sent events (``GET /v1/jobs/{id}/events``, ``text/event-stream``).

The stream reads the job from the store every ``events_poll_s`` (the step may be running in
another gateway replica: the database is what every replica shares) and sends what changed:

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
                     heartbeat_s: float, closing: asyncio.Event) -> AsyncIterator[str]:
    """The event stream of one job: ``first`` is its JSON view when the stream starts (read before, so a
    missing job is a 404 and not an empty stream); ``read_job()`` answers the current one."""
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
        try:
            await asyncio.wait_for(closing.wait(), poll_s)
            return  # the gateway is stopping: the client reconnects to another replica, or later
        except asyncio.TimeoutError:
            pass
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
