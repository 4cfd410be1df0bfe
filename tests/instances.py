"""Server instances of one test process, for the cross-instance tests.

`start_instance(settings, db=None)` opens services and serves them on a free port; with `db`
the instance shares that document store with another, as instances share one MongoDB in
production: the in-memory store by that very object, a wire store (`settings.mongodb_url`)
through a client of its own on the same database. Each instance has its own hub on the Redis of `settings`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import spec_conformance
from conftest import free_port
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer

from composition import close_services, open_services
from handlers.app import make_app


@dataclass
class Instance:
    services: object
    server: HTTPServer
    base_url: str

    @property
    def hub(self):
        return self.services.hub

    async def call(self, method: str, path: str, token: str | None = None, body=None):
        """A REST call on this instance; returns (status, parsed body)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        raw = json.dumps(body) if body is not None else (
            b"" if method in ("POST", "PUT", "PATCH") else None)
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(self.base_url + path, method=method, headers=headers, body=raw,
                        request_timeout=10, allow_nonstandard_methods=True), raise_error=False)
        spec_conformance.check(method, path, response.code,
                               response.headers.get("Content-Type", ""), response.body or b"")
        return response.code, json.loads(response.body) if response.body else None


async def start_instance(settings, db=None, cls: type[Instance] = Instance) -> Instance:
    """An instance (of `cls`) on a free port; with `db`, it shares that document store."""
    # on a real store both instances open the same database themselves
    shared = db if settings.embedded_store else None
    services = await open_services(settings, seed_fixtures=db is None, db=shared)
    server = HTTPServer(make_app(services))
    port = free_port()
    server.listen(port, "127.0.0.1")
    return cls(services, server, f"http://127.0.0.1:{port}")


async def stop_instance(instance: Instance) -> None:
    instance.server.stop()
    await close_services(instance.services)
