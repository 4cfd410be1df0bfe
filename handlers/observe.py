"""Latency and error metrics of the outside services, and the access log (docs/architecture.md
§9, README "Operations").

Every call to an outside service is counted in `hwc3d_dependency_seconds{dependency,
operation}` (a histogram) and, when it fails, `hwc3d_dependency_errors_total{dependency,
operation}`:

- ``mongodb``: each command (find, insert, update, aggregate, ...), from pymongo's command
  monitoring (`MongoCommandTimer`, a listener of the motor client; the in-memory store has no
  wire commands to time);
- ``redis``: each command of the shared client (`TimedRedis`; pub/sub and pipelines are
  counted by the hub's own metrics);
- ``s3``, ``payments``: each coroutine method of the storage backend and the payment
  provider (`instrument`), when they talk to a real service (S3, Stripe);
- ``smtp``: each connection (``connect``) and each message (``send``) of the mail transport
  (`TimedTransport`) when SMTP_HOST is set; the job queue's own metrics count the delivery
  jobs and their outcomes.

A failure is an exception other than the API's own 4xx answers (a declined card is the
provider's answer, not a failure of the provider).

`log_request(handler)` writes the access log line: method, path template, status, duration,
client IP (nginx's `X-Real-IP`/`X-Forwarded-For`, which the HTTPServer's `xheaders` applies),
user agent, request and response bytes, request id and user id as fields.
"""
from __future__ import annotations

import inspect
import logging
import re
import time
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import tornado.web
from pymongo import monitoring

from documents.errors import DomainError

ACCESS_LOG = logging.getLogger("hwc3d.access")
_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])(?:token|access_token|signature)=)[^&]+")


def _failed(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    return not (isinstance(exc, DomainError) and exc.status < 500)


def instrument(target: Any, dependency: str, metrics,
               methods: dict[str, str] | None = None) -> Any:
    """Time `target`'s coroutine methods as `dependency` calls; returns `target`.

    `methods` maps method name → operation label (default: every public coroutine method under
    its own name). The timed methods are set on the instance, so calls the object makes to
    itself are timed too (the mailer's `_deliver`, which `send` calls and whose failure `send`
    records rather than raises).
    """
    if methods is None:
        methods = {name: name for name in dir(type(target)) if not name.startswith("_")
                   and inspect.iscoroutinefunction(getattr(type(target), name, None))}
    for name, operation in methods.items():
        setattr(target, name, _timed(getattr(target, name), dependency, operation, metrics))
    return target


def _timed(method, dependency: str, operation: str, metrics):
    async def timed(*args, **kwargs):
        started, error = time.monotonic(), None
        try:
            return await method(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            metrics.observe_dependency(dependency, operation, time.monotonic() - started,
                                       _failed(error))

    return timed


class TimedTransport:
    """A mail transport (`providers.mail`: ``session()`` yields ``send(message)``) whose
    connections and messages are timed as ``smtp`` ``connect`` / ``send`` calls; failures
    (refused connections, SMTP errors) are counted as errors."""

    def __init__(self, transport, metrics, dependency: str = "smtp"):
        self.transport, self.metrics, self.dependency = transport, metrics, dependency
        self.keeps_secrets = transport.keeps_secrets

    def refused_for_good(self, exc: Exception) -> bool:
        return self.transport.refused_for_good(exc)

    @asynccontextmanager
    async def session(self):
        started, context = time.monotonic(), self.transport.session()
        try:
            send = await context.__aenter__()
        except BaseException as exc:
            self.metrics.observe_dependency(self.dependency, "connect",
                                            time.monotonic() - started, _failed(exc))
            raise
        self.metrics.observe_dependency(self.dependency, "connect", time.monotonic() - started,
                                        False)
        try:
            yield _timed(send, self.dependency, "send", self.metrics)
        except BaseException as exc:
            if not await context.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await context.__aexit__(None, None, None)


class TimedRedis(aioredis.Redis):
    """The redis-py asyncio client with each command timed as ``redis`` / the command name."""

    metrics = None

    async def execute_command(self, *args, **options):
        started, error = time.monotonic(), None
        try:
            return await super().execute_command(*args, **options)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.metrics is not None and args:
                name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
                self.metrics.observe_dependency("redis", name.split(" ", 1)[0].upper(),
                                                time.monotonic() - started, error is not None)


def open_redis(url: str, metrics) -> TimedRedis:
    """A `TimedRedis` client for `url` (bytes replies) reporting to `metrics`."""
    client = TimedRedis.from_url(url, decode_responses=False)
    client.metrics = metrics
    return client


class MongoCommandTimer(monitoring.CommandListener):
    """pymongo command monitoring → ``mongodb`` dependency metrics."""

    def __init__(self, metrics) -> None:
        self.metrics = metrics

    def started(self, event) -> None:
        pass

    def succeeded(self, event) -> None:
        self.metrics.observe_dependency("mongodb", event.command_name,
                                        event.duration_micros / 1e6, False)

    def failed(self, event) -> None:
        self.metrics.observe_dependency("mongodb", event.command_name,
                                        event.duration_micros / 1e6, True)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access log line of a finished request (logger ``hwc3d.access``)."""
    request = handler.request
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not ACCESS_LOG.isEnabledFor(level):
        return
    user = getattr(handler, "current_user", None)
    duration_ms = round(1000.0 * request.request_time(), 1)
    sent = handler._headers.get("Content-Length")  # set by finish() on every response
    received = request.headers.get("Content-Length")
    ACCESS_LOG.log(
        level, "%s %s %d %.1fms", request.method,
        _TOKEN_IN_QUERY.sub(r"\1***", request.uri) if "=" in request.uri else request.uri,
        status, duration_ms,
        extra={"request_id": getattr(handler, "request_id", "-"),
               "user_id": str(user["_id"]) if user else None,
               "method": request.method,
               "route": getattr(handler, "route_name", None) or type(handler).__name__,
               "status": status, "duration_ms": duration_ms,
               "client_ip": request.remote_ip,
               "user_agent": request.headers.get("User-Agent"),
               "bytes_sent": int(sent) if sent and sent.isdigit() else 0,
               "bytes_received": int(received) if received and received.isdigit() else 0})
