"""Structured logs with the standard library: one JSON object per line, or readable text.

Services log through ``logging.getLogger(__name__)`` as usual and pass structured fields with
``extra``; :func:`configure_logging` decides how records look. JSON is the default in
deployments, because log collectors (Loki, Elasticsearch, Cloud Logging) index its fields
without parsing; text is for a developer's terminal.

Example
-------
>>> import io, json, logging
>>> stream = io.StringIO()
>>> configure_logging("INFO", "json", service="decoding", stream=stream)
>>> logging.getLogger("services.decoding").info("binned", extra={"n_bins": 120})
>>> record = json.loads(stream.getvalue())
>>> record["message"], record["service"], record["n_bins"], record["level"]
('binned', 'decoding', 120, 'INFO')
>>> reset_logging()
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Literal, TextIO

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _iso_utc(created: float) -> str:
    """``2024-05-01T12:00:00.123Z``: ISO-8601 in UTC with milliseconds, as collectors expect."""
    return datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a caller attached with ``extra=``, in the order given."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, service, then the extra fields.

    A stack trace, when the record has one, goes in ``exception`` (as one string, so that the
    record stays one line). Values JSON cannot encode are written with ``str``.
    """

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        # Standard keys win over extras of the same name, so the schema stays fixed.
        entry.update({k: v for k, v in extra_fields(record).items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO  decoding services.x: message key=value ...``"""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
                          for k, v in extra_fields(record).items())
        line = (f"{_iso_utc(record.created)} {record.levelname:<7} {self.service or '-'} "
                f"{record.name}: {record.getMessage()}")
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        elif record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class _NeuroMeshHandler(logging.StreamHandler):
    """The handler :func:`configure_logging` installs; its own class lets it find and replace it."""


def configure_logging(level: str | int = "INFO", fmt: LogFormat = "json", *, service: str = "",
                      stream: TextIO | None = None) -> None:
    """Send all log records at ``level`` and above to ``stream`` (stderr) in format ``fmt``.

    Calling it again replaces the handler it installed before (so a service can set its name
    once it is known) and leaves other handlers, such as pytest's log capture, in place.

    Parameters
    ----------
    level : str or int
        ``"DEBUG"``, ``"INFO"``, ``"WARNING"``, ``"ERROR"`` or a ``logging`` level number.
    fmt : {"json", "text"}
        One JSON object per line, or human-readable lines.
    service : str
        The service name written in every record (``"decoding"``).
    stream : file-like, optional
        Where to write; standard error by default, keeping standard output for program output.

    Raises
    ------
    ValueError
        For an unknown format or level.
    """
    formatters = {"json": JsonFormatter, "text": TextFormatter}
    if fmt not in formatters:
        raise ValueError(f"log format must be one of {sorted(formatters)}, got {fmt!r}")
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = _NeuroMeshHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatters[fmt](service))
    root = logging.getLogger()
    reset_logging()
    root.addHandler(handler)
    root.setLevel(numeric_level)


def reset_logging() -> None:
    """Remove the handler :func:`configure_logging` installed, if any."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _NeuroMeshHandler)]:
        root.removeHandler(handler)
        handler.close()
