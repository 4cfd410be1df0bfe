"""Operations routes (docs/architecture.md §9): `/healthz` (process up), `/readyz` (dependencies reachable)
and `/metrics` (Prometheus text format)."""
from __future__ import annotations

import logging

from marshmallow import Schema, fields, validate
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from documents import db as documents_db
from handlers.base import ApiHandler, public, responds
from handlers.schemas_catalog import StatusOut

log = logging.getLogger("hwc3d")


class HealthHandler(ApiHandler):
    rate_limit = None

    @public
    @responds(StatusOut)
    async def get(self) -> None:
        """Always 200 ``{"status": "ok"}`` while the process serves requests."""
        self.write_json({"status": "ok"})


class ReadyOut(Schema):
    """``ready`` (200) or ``unavailable`` (503) with the check of each dependency;
    ``draining`` (503, no checks) once a shutdown started."""

    status = fields.String(required=True,
                           validate=validate.OneOf(("ready", "unavailable", "draining")))
    checks = fields.Dict(keys=fields.String(), values=fields.Boolean(),
                         metadata={"description": "mongodb, storage and (when configured) "
                                                  "redis: true when it answered; absent "
                                                  "while draining"})


class ReadyHandler(ApiHandler):
    rate_limit = None

    @public
    @responds(ReadyOut, alternates=(503,))
    async def get(self) -> None:
        """200 when the document store, Redis (if configured) and storage answer, else 503.

        Body: ``{"status": "ready"|"unavailable", "checks": {"mongodb": bool, "redis": bool?,
        "storage": bool}}``; from the moment a shutdown starts (SIGTERM) 503 ``{"status":
        "draining"}``, so balancers stop sending new requests while the instance drains.
        """
        if self.services.draining:
            self.write_json({"status": "draining"}, 503)
            return
        checks = {"mongodb": await documents_db.ping(self.db),
                  "storage": await self.services.storage.ping()}
        clients = [c for c in (self.services.redis, self.services.redis_cluster) if c is not None]
        if clients:
            try:
                checks["redis"] = all([bool(await client.ping()) for client in clients])
            except Exception:
                checks["redis"] = False
        ready = all(checks.values())
        self.write_json({"status": "ready" if ready else "unavailable", "checks": checks},
                        200 if ready else 503)


class MetricsHandler(ApiHandler):
    rate_limit = None

    @public
    @responds(media="text/plain")
    async def get(self) -> None:
        """Prometheus metrics of this instance (text exposition format); the job queue's
        depth is read at each scrape."""
        if self.services.jobs is not None:
            try:
                await self.services.jobs.refresh_metrics()
            except Exception:  # Redis away: the other metrics still answer
                log.warning("could not read the job queue depth", exc_info=True)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.services.metrics.registry))


routes = [
    (r"/healthz", HealthHandler),
    (r"/readyz", ReadyHandler),
    (r"/metrics", MetricsHandler),
]
