"""Prometheus metrics of one instance, on a registry of its own (no global state).

Exposed at `/metrics` (DESIGN §9): HTTP requests and latencies by route and status, open
sockets per hub, events published and delivered, slow-consumer closes.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The instance's collectors. One object per Application (tests run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hwc3d_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("hwc3d_http_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.sockets = Gauge("hwc3d_ws_open_sockets", "Open WebSocket connections",
                             ["hub"], registry=self.registry)
        self.events_published = Counter("hwc3d_events_published_total", "Events published",
                                        ["hub"], registry=self.registry)
        self.events_delivered = Counter("hwc3d_events_delivered_total",
                                        "Events written to local sockets", ["hub"],
                                        registry=self.registry)
        self.slow_consumers = Counter("hwc3d_ws_slow_consumer_closes_total",
                                      "Sockets closed for not reading", ["hub"],
                                      registry=self.registry)

    def observe_request(self, handler, seconds: float) -> None:
        """Count one finished request under its route pattern (not its raw path)."""
        route = getattr(handler, "route_name", None) or type(handler).__name__
        method = handler.request.method
        self.requests.labels(method, route, str(handler.get_status())).inc()
        self.latency.labels(method, route).observe(seconds)
