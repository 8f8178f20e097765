"""Structured logs: one JSON object per line with the fixed fields and the ``extra`` ones, or text."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from services.common.logs import configure_logging, reset_logging


@pytest.fixture
def stream():
    out = io.StringIO()
    yield out
    reset_logging()


def test_json_line_has_the_fixed_fields_and_the_extras(stream):
    configure_logging("INFO", "json", service="decoding", stream=stream)
    logging.getLogger("services.decoding.servicer").info("binned %d spikes", 42,
                                                         extra={"n_bins": 120, "bucket": "neuromesh"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record == {"ts": record["ts"], "level": "INFO", "logger": "services.decoding.servicer",
                      "message": "binned 42 spikes", "service": "decoding", "n_bins": 120, "bucket": "neuromesh"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])


def test_json_keeps_a_stack_trace_in_one_line_and_encodes_any_value(stream):
    configure_logging("INFO", "json", stream=stream)
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logging.getLogger("x").exception("failed", extra={"shape": (3, 4), "path": object()})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "ERROR"
    assert "Traceback" in record["exception"] and "RuntimeError: disk on fire" in record["exception"]
    assert record["shape"] == [3, 4] and record["path"].startswith("<object object")


def test_extras_cannot_overwrite_the_fixed_fields(stream):
    configure_logging("INFO", "json", service="decoding", stream=stream)
    logging.getLogger("x").info("hello", extra={"service": "spoofed", "level": "NONE"})
    record = json.loads(stream.getvalue())
    assert record["service"] == "decoding" and record["level"] == "INFO"


def test_level_filters_records(stream):
    configure_logging("WARNING", "json", stream=stream)
    logging.getLogger("x").info("quiet")
    logging.getLogger("x").warning("loud")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["loud"]


def test_text_is_one_readable_line_with_the_extras(stream):
    configure_logging("DEBUG", "text", service="decoding", stream=stream)
    logging.getLogger("services.common.server").info("serving", extra={"grpc_port": 50051, "note": "two words"})
    line = stream.getvalue().rstrip("\n")
    assert re.fullmatch(r"\S+Z INFO +decoding services\.common\.server: serving grpc_port=50051 note='two words'",
                        line), line


def test_configuring_again_replaces_only_its_own_handler(stream):
    other = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(other)
    try:
        configure_logging("INFO", "json", stream=io.StringIO())
        configure_logging("INFO", "json", service="decoding", stream=stream)
        logging.getLogger("x").info("once")
        assert other in root.handlers
        assert [json.loads(line)["service"] for line in stream.getvalue().splitlines()] == ["decoding"]
    finally:
        root.removeHandler(other)


@pytest.mark.parametrize(("level", "fmt", "message"), [
    ("INFO", "yaml", "log format must be one of"),
    ("LOUD", "json", "unknown log level 'LOUD'"),
])
def test_bad_level_or_format_is_a_value_error(level, fmt, message):
    with pytest.raises(ValueError, match=message):
        configure_logging(level, fmt)
