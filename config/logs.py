"""Logging set-up: one JSON object per line in production, readable text in development.

Every record carries the request id of the request being served (a context variable that
the base handler sets), so a log line can be joined to its response's `X-Request-ID`.

Access lines (logger ``hwc3d.access``, one per request) are buffered like nginx's
``access_log ... buffer=``: held in memory and written together when `ACCESS_LOG_BUFFER`
lines are held, when one is a warning or worse (a 4xx or 5xx), on the server's one-second
flush (`AccessLogBuffer.flush`) and at exit. What a SIGKILL'd process held is lost: at most
one second of access lines. `ACCESS_LOG_BUFFER=0` writes every line at once.
"""
from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import sys
from datetime import datetime, timezone

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, request_id, and extras."""

    _SKIP = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
               "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
               "request_id": getattr(record, "request_id", "-")}
        out.update({k: v for k, v in record.__dict__.items() if k not in self._SKIP})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


ACCESS_LOGGER = "hwc3d.access"


class AccessLogBuffer(logging.handlers.MemoryHandler):
    """Access records held until `capacity` of them, a warning or worse, or `flush()` (the
    server calls it every second); then handed to the process's log handler in order."""

    def __init__(self, capacity: int, target: logging.Handler):
        super().__init__(capacity, flushLevel=logging.WARNING, target=target, flushOnClose=True)


def setup_logging(log_format: str = "text", level: str = "INFO",
                  access_buffer: int = 0) -> AccessLogBuffer | None:
    """Configure the root logger once for the process; with `access_buffer` > 0 the access
    lines go through an `AccessLogBuffer` of that many records, which is returned (the
    caller flushes it every second)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER)
    if access_buffer <= 0:
        access.handlers[:], access.propagate = [], True
        return None
    buffer = AccessLogBuffer(access_buffer, handler)
    access.handlers[:], access.propagate = [buffer], False
    return buffer
