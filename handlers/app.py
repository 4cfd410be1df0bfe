"""The Tornado Application (docs/architecture.md §3).

`make_app(services)` joins the route lists of the handler modules (`HANDLER_MODULES`), hands
`services` (`composition.Services`) to each handler through `initialize`, and ends with the
JSON 404 for unknown routes; JSON bodies are bounded (`handlers/limits.py`). `server.py` and
the tests are the only callers.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import tornado.web

from handlers.base import NotFoundHandler
from handlers.docs_pages import DocsAssetHandler
from handlers.limits import LimitedApplication
from handlers.observe import log_request
from handlers.openapi import ROUTES_SETTING, route_path

if TYPE_CHECKING:
    from composition import Services

# Each module exports `routes = [(pattern, HandlerClass), ...]`.
HANDLER_MODULES = (
    "handlers.health",
    "handlers.openapi",
    "handlers.docs_pages",
    "handlers.asyncapi",
    "handlers.auth",
    "handlers.auth_oauth",
    "handlers.users",
    "handlers.categories",
    "handlers.models",
    "handlers.uploads",
    "handlers.model_uploads",
    "handlers.downloads",
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
    "handlers.admin.coupons",
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
    "handlers.admin.jobs",
)


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
    routes = collect_routes()
    for pattern, handler in routes:
        template = route_path(pattern, handler)  # the metrics and log label
        handler_class = type(handler.__name__, (handler,),
                             {"route_name": template[0] if template else pattern})
        specs.append(tornado.web.url(pattern, handler_class, {"services": services}))
    specs.append(tornado.web.url(r"/api/.*", NotFoundHandler, {"services": services}))
    specs.append(tornado.web.url(r"/docs/static/(.*)", DocsAssetHandler))
    return LimitedApplication(
        specs,
        default_handler_class=NotFoundHandler,  # every other path: the JSON 404 too
        default_handler_args={"services": services},
        log_function=log_request,
        compress_response=settings.compress_responses,  # gzip when no proxy does it
        websocket_ping_interval=settings.ws_ping_interval,
        websocket_ping_timeout=settings.ws_ping_timeout,
        websocket_max_message_size=settings.ws_max_message_size,
        xsrf_cookies=False,
        **{ROUTES_SETTING: routes},  # what /openapi.json describes
        services=services,
        **extra_settings,
    )
