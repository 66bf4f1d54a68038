"""Structured log lines: the request id of the current request, JSON and key=value formatters.

:class:`~asgi_llmroute.middleware.observe.ObserveMiddleware` sets :data:`REQUEST_ID` for the duration
of each request, so any log line written while handling it (the forwarder's warnings included) can carry
the id: :class:`RequestIdFilter` copies it onto the record as ``record.request_id``, and both formatters
print it. Fields given as ``extra={"fields": {...}}`` are printed as top-level keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal

__all__ = [
    "REQUEST_ID",
    "JSONFormatter",
    "KeyValueFormatter",
    "RequestIdFilter",
    "configure_logging",
    "uvicorn_log_config",
]

#: The id of the request being handled in this context, or None outside a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("llmroute_request_id", default=None)

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Copies the current request id onto every record as ``request_id`` (None outside a request).

    Attach it to a handler to use ``%(request_id)s`` in a plain ``logging.Formatter``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def _base(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": _timestamp(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
    if request_id is not None:
        out["request_id"] = request_id
    fields = getattr(record, "fields", None)
    if isinstance(fields, Mapping):
        out.update(fields)
    return out


_last_second: list[Any] = [-1, ""]  # (second, its formatted prefix): strftime once per second


def _timestamp(created: float) -> str:
    seconds = int(created)
    cache = _last_second
    if cache[0] != seconds:
        cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        cache[0] = seconds
    return f"{cache[1]}.{int((created - seconds) * 1000):03d}Z"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``request_id``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = _base(record)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _JSON.encode(out)


class KeyValueFormatter(logging.Formatter):
    """``key=value`` pairs on one line (logfmt); values with spaces, quotes or ``=`` are JSON-quoted."""

    def format(self, record: logging.LogRecord) -> str:
        out = _base(record)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # Plain strings, ints and floats (nearly every value of an access line) are written here, without a call.
        return " ".join(
            [
                f"{key}={value}"
                if ((kind := type(value)) is str and value and _NEEDS_QUOTES(value) is None)
                or kind is int
                or kind is float
                else f"{key}={_kv_value(value)}"
                for key, value in out.items()
                if value is not None
            ]
        )


def _kv_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if not text or _NEEDS_QUOTES(text):
        return _JSON.encode(text)
    return text


_NEEDS_QUOTES = re.compile(r'[ ="\\\n\r\t]').search


def configure_logging(
    format: Literal["kv", "json"] = "kv", level: str = "info", *, stream: Any = None
) -> logging.Handler:
    """Send the ``asgi_llmroute`` loggers to ``stream`` (stderr) in ``format``; returns the handler.

    Replaces a handler installed by an earlier call, so calling it again reconfigures.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JSONFormatter() if format == "json" else KeyValueFormatter())
    handler.addFilter(RequestIdFilter())
    handler.set_name("llmroute")
    logger = logging.getLogger("asgi_llmroute")
    for old in [h for h in logger.handlers if h.get_name() == "llmroute"]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False  # our lines are complete; do not repeat them through the root logger
    return handler


def uvicorn_log_config(format: Literal["kv", "json"] = "kv") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's own loggers that writes their lines in ``format``.

    Pass it as uvicorn's ``log_config`` so that, with ``[logging] format = "json"``, uvicorn's start-up,
    shutdown and error lines are JSON objects on stderr like the gateway's, not plain text between them.
    """
    formatter = "asgi_llmroute.logs.JSONFormatter" if format == "json" else "asgi_llmroute.logs.KeyValueFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"llmroute": {"()": formatter}},
        "handlers": {
            "llmroute": {"class": "logging.StreamHandler", "formatter": "llmroute", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "uvicorn": {"handlers": ["llmroute"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["llmroute"], "level": "INFO", "propagate": False},
        },
    }
