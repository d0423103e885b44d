"""Logging for the command line: plain lines, or JSON objects for machines (``--log-json``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Fields the server passes as ``extra`` (session, decision…): JSON lines carry them as keys.
EXTRA_FIELDS = ("session", "remote", "code", "desired", "mood", "reason", "until", "event")
PLAIN_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the extra fields the record has, and ``exception`` with a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(verbose: bool, as_json: bool) -> None:
    """Log to stderr: debug with ``verbose``, else info; JSON lines with ``as_json``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(PLAIN_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if verbose:
        # Their debug lines (every frame, every request) would drown segue's.
        for noisy in ("aiohttp", "asyncio", "websockets"):
            logging.getLogger(noisy).setLevel(logging.INFO)


def logging_json() -> bool:
    """Whether ``--log-json`` is in force (the root logger writes JSON lines)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
