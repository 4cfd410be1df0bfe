"""The Application and the services it hands to every handler.

`open_services(settings)` opens every client (document store, Redis, storage, mail, pools)
in order; `close_services` closes them in reverse. `make_app(services)` joins the route lists
of the handler modules, hands `services` to each handler through `initialize`, and ends with
the JSON 404 for unknown `/api` routes. `server.py` and the tests are the only callers.
"""
from __future__ import annotations

import contextvars
import importlib
import logging
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import tornado.web
from tornado.httpclient import AsyncHTTPClient

from config import Settings
from config.logs import request_id_var
from documents import accounts, outbox, payments, seed
from documents import db as documents_db
from documents.common import render
from handlers.base import NotFoundHandler
from handlers.metrics import Metrics
from realtime.ratelimit import MemoryRateLimiter

log = logging.getLogger("hwc3d")

# Each module exports `routes = [(pattern, HandlerClass), ...]`.
HANDLER_MODULES = (
    "handlers.health",
    "handlers.openapi",
    "handlers.auth",
    "handlers.users",
    "handlers.categories",
    "handlers.models",
    "handlers.uploads",
    "handlers.files",
    "handlers.admin.models",
    "handlers.admin.users",
    "handlers.support",
    "handlers.notifications",
    "handlers.messages",
    "handlers.sockets",
    "handlers.engagement",
    "handlers.collections",
    "handlers.cart",
    "handlers.checkout",
    "handlers.purchases",
    "handlers.webhooks",
    "handlers.earnings",
    "handlers.analytics",
    "handlers.admin.revenue",
    "handlers.subscriptions",
    "handlers.blog",
    "handlers.search",
    "handlers.communities",
    "handlers.posts",
    "handlers.admin.communities",
    "handlers.content",
    "handlers.admin.content",
    "handlers.bounties",
    "handlers.courses",
    "handlers.admin.learning",
)


@dataclass
class Services:
    """Everything a handler may use, created once per instance by `open_services`."""

    settings: Settings
    db_client: Any = None
    db: Any = None
    redis: Any = None
    storage: Any = None
    mailer: Any = None
    rate_limiter: Any = None
    hub: Any = None
    payments: Any = None
    analysis_pool: ProcessPoolExecutor | None = None
    http_client: AsyncHTTPClient | None = None
    metrics: Metrics = field(default_factory=Metrics)
    log_context: contextvars.ContextVar = request_id_var
    closers: list = field(default_factory=list)


async def open_services(settings: Settings, *, seed_fixtures: bool | None = None) -> Services:
    """Open every client named by `settings` (embedded parts where nothing is configured).

    Creates the indexes, and loads `fixtures/` into the store when `seed_fixtures` (default:
    `settings.seed_fixtures`) and the store has no users yet.
    """
    services = Services(settings=settings)
    services.db_client = documents_db.open_client(settings)
    services.db = services.db_client[settings.mongodb_db]
    services.closers.append(services.db_client.close)
    await documents_db.ensure_indexes(services.db)

    if settings.redis_url:
        import redis.asyncio as aioredis

        from realtime.ratelimit import RedisRateLimiter

        services.redis = aioredis.from_url(settings.redis_url, decode_responses=False)
        services.closers.append(services.redis.aclose)
        services.rate_limiter = RedisRateLimiter(services.redis)
    else:
        services.rate_limiter = MemoryRateLimiter()

    from storage import open_storage

    services.storage = await open_storage(settings)
    services.closers.append(services.storage.close)
    # forkserver: never fork a process that already runs threads; recycle workers so one that
    # parsed a large model does not keep its memory.
    services.analysis_pool = ProcessPoolExecutor(
        max_workers=settings.analysis_workers,
        mp_context=multiprocessing.get_context("forkserver"), max_tasks_per_child=20)
    services.closers.append(lambda: services.analysis_pool.shutdown(wait=False, cancel_futures=True))
    services.mailer = outbox.open_mailer(settings, services.db)
    services.payments = payments.open_payment_provider(settings)
    services.closers.append(services.payments.close)
    services.http_client = AsyncHTTPClient(force_instance=True)
    services.closers.append(services.http_client.close)

    from realtime.hub import open_hub

    services.hub = await open_hub(settings, services.redis, services.metrics, render=render)
    services.closers.append(services.hub.close)

    if seed_fixtures if seed_fixtures is not None else settings.seed_fixtures:
        await seed.load_fixtures(services.db, services.storage)
    await accounts.ensure_first_admin(services.db, settings)  # after the seed: ADMIN_EMAIL
    return services


async def close_services(services: Services) -> None:
    """Close what `open_services` opened, in reverse order; never raises."""
    for close in reversed(services.closers):
        try:
            result = close()
            if hasattr(result, "__await__"):
                await result
        except Exception:
            log.warning("error while closing %r", close, exc_info=True)
    services.closers.clear()


_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])(?:token|access_token|signature)=)[^&]+")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    user = getattr(handler, "current_user", None)
    logging.getLogger("hwc3d.access").log(
        level, "%s %s %d %.1fms", handler.request.method,
        _TOKEN_IN_QUERY.sub(r"\1***", handler.request.uri), status,
        1000.0 * handler.request.request_time(),
        extra={"request_id": getattr(handler, "request_id", "-"),
               "user_id": str(user["_id"]) if user else None,
               "route": getattr(handler, "route_name", None), "status": status,
               "duration_ms": round(1000.0 * handler.request.request_time(), 1)})


def collect_routes() -> list[tuple[str, type]]:
    """Every (pattern, handler class) of HANDLER_MODULES, in order."""
    routes: list[tuple[str, type]] = []
    for name in HANDLER_MODULES:
        routes.extend(importlib.import_module(name).routes)
    return routes


def make_app(services: Services, **extra_settings) -> tornado.web.Application:
    """The Tornado Application for `services`; `extra_settings` override Tornado settings."""
    settings = services.settings
    specs = []
    for pattern, handler in collect_routes():
        handler_class = type(handler.__name__, (handler,), {"route_name": pattern})
        specs.append(tornado.web.url(pattern, handler_class, {"services": services}))
    specs.append(tornado.web.url(r"/api/.*", NotFoundHandler, {"services": services}))
    return tornado.web.Application(
        specs,
        log_function=_log_request,
        websocket_ping_interval=settings.ws_ping_interval,
        websocket_ping_timeout=settings.ws_ping_timeout,
        websocket_max_message_size=settings.ws_max_message_size,
        xsrf_cookies=False,
        services=services,
        **extra_settings,
    )
