"""The progress adapter: Progress messages to a tqdm bar (when it would be seen) and to a callback."""

from __future__ import annotations

import io

import grpc
import pytest

from neuromesh.common.v1.progress_pb2 import Progress
from neuromesh.sdk.progress import ProgressEvent, ProgressReporter, format_counters, interactive


class FakeBar:
    """Records what the reporter does to a tqdm bar."""

    made: list["FakeBar"] = []

    def __init__(self, **options):
        self.options, self.n, self.descriptions, self.postfixes, self.written = options, 0.0, [], [], []
        self.closed = False
        FakeBar.made.append(self)

    def set_description_str(self, text, refresh=True):
        self.descriptions.append(text)

    def set_postfix_str(self, text, refresh=True):
        self.postfixes.append(text)

    def refresh(self):
        pass

    def write(self, text):
        self.written.append(text)

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def fresh_bars():
    FakeBar.made = []


def event(fraction, stage="simulate", message="", **counters):
    return Progress(fraction_done=fraction, stage=stage, message=message, counters=counters)


def test_events_reach_the_callback_with_everything_the_service_sent():
    seen: list[ProgressEvent] = []
    reporter = ProgressReporter("simulation.Simulate", show=False, callback=seen.append, service="simulation",
                                method="Simulate")
    reporter.progress(event(0.25, message="chunk 3", simulated_ms=250.0, spikes=1200.0))
    reporter.close()
    assert seen == [ProgressEvent("simulation", "Simulate", 0.25, "simulate", "chunk 3",
                                  {"simulated_ms": 250.0, "spikes": 1200.0}, 1)]


def test_no_bar_is_drawn_when_off_or_when_no_one_would_see_it():
    for show in (False, None):   # None: auto, and a StringIO is not a terminal
        out = io.StringIO()
        reporter = ProgressReporter("decoding.Train", show=show, file=out, bar_factory=FakeBar)
        reporter.progress(event(0.5))
        reporter.close()
        assert out.getvalue() == "" and FakeBar.made == []
    assert interactive(io.StringIO()) is False


def test_the_bar_follows_the_fraction_stage_and_counters_and_ends_full():
    reporter = ProgressReporter("simulation.Simulate", show=True, bar_factory=FakeBar)
    reporter.progress(event(0.1, simulated_ms=100.0))
    reporter.progress(event(0.6, stage="store", message="spikes"))
    (bar,) = FakeBar.made
    assert bar.options["total"] == 100.0 and bar.n == 60.0
    assert [d.rstrip() for d in bar.descriptions] == ["simulation.Simulate simulate", "simulation.Simulate store"]
    assert len({len(d) for d in bar.descriptions}) == 1   # one width: the bar does not jump
    assert bar.postfixes == ["simulated_ms=100", "spikes"]
    reporter.close("done")
    assert bar.n == 100.0 and bar.closed


def test_fractions_outside_0_1_or_nan_are_clamped():
    seen = []
    reporter = ProgressReporter("x", show=True, bar_factory=FakeBar, callback=seen.append)
    for fraction in (-0.5, 1.7, float("nan")):
        reporter.progress(event(fraction))
    assert [e.fraction for e in seen] == [0.0, 1.0, 0.0]


def test_a_bar_appears_only_with_the_first_event():
    reporter = ProgressReporter("reduction.Fit", show=True, bar_factory=FakeBar)
    reporter.close("done")   # answered at once from stored results: nothing drawn
    assert FakeBar.made == []


def test_a_retry_is_announced_and_restarts_the_bar_and_numbers_the_attempt():
    seen = []
    reporter = ProgressReporter("segmentation.Segment", show=True, bar_factory=FakeBar, callback=seen.append)
    reporter.progress(event(0.7))
    reporter.retrying(1, grpc.StatusCode.UNAVAILABLE, 0.5)
    (bar,) = FakeBar.made
    assert bar.n == 0 and "UNAVAILABLE" in bar.written[0]
    reporter.progress(event(0.1))
    assert [e.attempt for e in seen] == [1, 2]


def test_a_cancelled_call_leaves_the_bar_marked_not_full():
    reporter = ProgressReporter("simulation.Simulate", show=True, bar_factory=FakeBar)
    reporter.progress(event(0.3))
    reporter.close("cancelled")
    (bar,) = FakeBar.made
    assert bar.n == 30.0 and bar.postfixes[-1] == "cancelled" and bar.closed


def test_a_real_tqdm_bar_writes_to_its_file():
    out = io.StringIO()
    reporter = ProgressReporter("connectomics.ContactGraph", show=True, file=out)
    reporter.progress(event(0.5, stage="contacts", blocks_done=4.0))
    reporter.close("done")
    text = out.getvalue()
    assert "connectomics.ContactGraph contacts" in text and "blocks_done=4" in text and "100%" in text


def test_the_callback_must_be_callable_and_its_exceptions_propagate():
    with pytest.raises(TypeError):
        ProgressReporter("x", callback="print")

    def stop(_):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        ProgressReporter("x", show=False, callback=stop).progress(event(0.1))


def test_counters_are_short():
    assert format_counters({"neuron_steps": 1.2e9, "spikes": 12.0, "rate": 0.125}) == \
        "neuron_steps=1.2G spikes=12 rate=0.125"
    assert format_counters({f"c{i}": float(i) for i in range(5)}) == "c0=0 c1=1 c2=2"
