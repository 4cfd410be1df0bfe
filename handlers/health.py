"""Operations routes (DESIGN §9): `/healthz` (process up), `/readyz` (dependencies reachable)
and `/metrics` (Prometheus text format)."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from documents import db as documents_db
from handlers.base import ApiHandler, public


class HealthHandler(ApiHandler):
    rate_limit = None

    @public
    async def get(self) -> None:
        """Always 200 ``{"status": "ok"}`` while the process serves requests."""
        self.write_json({"status": "ok"})


class ReadyHandler(ApiHandler):
    rate_limit = None

    @public
    async def get(self) -> None:
        """200 when the document store, Redis (if configured) and storage answer, else 503.

        Body: ``{"status": "ready"|"unavailable", "checks": {"mongodb": bool, "redis": bool?,
        "storage": bool}}``.
        """
        checks = {"mongodb": await documents_db.ping(self.db),
                  "storage": await self.services.storage.ping()}
        if self.services.redis is not None:
            try:
                checks["redis"] = bool(await self.services.redis.ping())
            except Exception:
                checks["redis"] = False
        ready = all(checks.values())
        self.write_json({"status": "ready" if ready else "unavailable", "checks": checks},
                        200 if ready else 503)


class MetricsHandler(ApiHandler):
    rate_limit = None

    @public
    async def get(self) -> None:
        """Prometheus metrics of this instance (text exposition format)."""
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.services.metrics.registry))


routes = [
    (r"/healthz", HealthHandler),
    (r"/readyz", ReadyHandler),
    (r"/metrics", MetricsHandler),
]
