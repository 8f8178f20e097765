"""The server-sent event stream of a job, on a scripted sequence of job states (no server)."""

from __future__ import annotations

import asyncio
import json

from gateway.api.events import job_events


def job(state, *steps):
    return {"id": "j", "state": state, "steps": [{"id": sid, "state": st, "progress": p, "progress_message": "",
                                                   "attempts": 1, "error": None} for sid, st, p in steps]}


def parse(stream_text):
    events = []
    for block in stream_text.strip().split("\n\n"):
        lines = block.split("\n")
        if lines[0].startswith(":"):
            events.append(("heartbeat", None))
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields["event"], json.loads(fields["data"]), int(fields["id"])))
    return events


def collect(first, later, *, heartbeat_s=10.0, closing=None):
    reads = iter(later)

    async def read():
        return next(reads)

    async def run():
        out = []
        async for chunk in job_events(first, read, poll_s=0.01, heartbeat_s=heartbeat_s,
                                      closing=closing or asyncio.Event()):
            out.append(chunk)
        return "".join(out)

    return parse(asyncio.run(run()))


def test_the_whole_job_then_what_changed_then_the_end():
    events = collect(job("pending", ("a", "pending", None), ("b", "pending", None)), [
        job("running", ("a", "running", 0.1), ("b", "pending", None)),
        job("running", ("a", "running", 0.1), ("b", "pending", None)),        # nothing changed: nothing sent
        job("running", ("a", "running", 0.7), ("b", "pending", None)),
        job("running", ("a", "succeeded", 1.0), ("b", "running", 0.0)),
        job("succeeded", ("a", "succeeded", 1.0), ("b", "succeeded", 1.0)),
    ])
    kinds = [e[0] for e in events]
    assert kinds == ["job", "step", "job", "step", "step", "step", "step", "end"]
    assert [e[2] for e in events] == list(range(1, 9))                    # ids count the events
    steps = [(e[1]["step"]["id"], e[1]["step"]["state"], e[1]["step"]["progress"]) for e in events if e[0] == "step"]
    assert steps == [("a", "running", 0.1), ("a", "running", 0.7), ("a", "succeeded", 1.0), ("b", "running", 0.0),
                     ("b", "succeeded", 1.0)]
    assert events[-1][1]["state"] == "succeeded"


def test_an_ended_job_ends_the_stream_at_once_and_quiet_streams_get_heartbeats():
    assert [e[0] for e in collect(job("failed", ("a", "failed", None)), [])] == ["job", "end"]
    quiet = [job("running", ("a", "running", 0.5))] * 30 + [job("cancelled", ("a", "cancelled", 0.5))]
    events = collect(job("running", ("a", "running", 0.5)), quiet, heartbeat_s=0.05)
    assert ("heartbeat", None) in events and events[-1][0] == "end"


def test_a_stopping_gateway_ends_its_streams():
    closing = asyncio.Event()
    closing.set()
    assert [e[0] for e in collect(job("running", ("a", "running", 0.5)), [], closing=closing)] == ["job"]
