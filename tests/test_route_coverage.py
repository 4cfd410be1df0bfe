"""Every route of `docs/routes.txt` is served and documented.

For each `METHOD PATH` line: the server's route table (`handlers.app.collect_routes`) has a
handler whose pattern matches the path with its parameters filled in and which implements
the method, and `/openapi.json` documents the operation. `WS` lines must be served by a
WebSocket handler.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from tornado.websocket import WebSocketHandler

from handlers.app import collect_routes

ROUTES_FILE = Path(__file__).resolve().parent.parent / "docs" / "routes.txt"
SAMPLE_ID = "652000000000000000000001"


def listed_routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every route line of docs/routes.txt, '+' lines included."""
    out = []
    for line in ROUTES_FILE.read_text().splitlines():
        parts = line.removeprefix("+").split()
        if len(parts) == 2 and not line.startswith("#"):
            out.append((parts[0], parts[1]))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", SAMPLE_ID, path)


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _handler_for(path: str):
    for pattern, handler in collect_routes():
        if re.fullmatch(pattern, _concrete(path)):
            return handler
    return None


def test_the_route_list_is_complete():
    routes = listed_routes()
    assert len(routes) >= 250
    assert {method for method, _ in routes} == {"GET", "POST", "PUT", "PATCH", "DELETE", "WS"}


def test_every_listed_route_is_served():
    missing = []
    for method, path in listed_routes():
        handler = _handler_for(path)
        if method == "WS":
            ok = handler is not None and issubclass(handler, WebSocketHandler)
        else:
            ok = handler is not None and method.lower() in vars_of(handler)
        if not ok:
            missing.append(f"{method} {path}")
    assert missing == []


def vars_of(handler: type) -> set[str]:
    """The HTTP verbs a handler class implements itself (not the 405 defaults)."""
    verbs = set()
    for klass in handler.__mro__:
        if klass.__module__.startswith("tornado"):
            break
        verbs |= {name for name in vars(klass)
                  if name in ("get", "post", "put", "patch", "delete")}
    return verbs


@pytest.mark.gen_test
async def test_every_listed_http_route_is_in_the_spec(api):
    spec = (await api("GET", "/openapi.json")).json
    documented = {(verb.upper(), _shape(path)) for path, item in spec["paths"].items()
                  for verb in item}
    missing = [f"{method} {path}" for method, path in listed_routes()
               if method != "WS" and (method, _shape(path)) not in documented]
    assert missing == []
