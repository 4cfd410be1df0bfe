"""Prometheus metrics of one instance, on a registry of its own (no global state).

Exposed at `/metrics` (docs/architecture.md §9): HTTP requests and latencies by route
template (`/api/models/{model_id}`) and status, open sockets per hub, events published and
delivered, slow-consumer closes; latency and errors of the outside services
(`handlers/observe.py`); the process (CPU, memory, open files), the garbage collector and the
build (`hwc3d_build_info{version, python, tornado}`).
"""
from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)


class Metrics:
    """The instance's collectors. One object per Application (tests run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple, tuple] = {}   # labels → (counter, histogram)
        self._dependency_children: dict[tuple, object] = {}  # labels → latency histogram
        for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
            self.registry.register(collector)  # stateless: they read the process when scraped
        self.build = Info("hwc3d_build", "Build of this instance", registry=self.registry)
        self.dependency_latency = Histogram(
            "hwc3d_dependency_seconds", "Calls to outside services", ["dependency", "operation"],
            registry=self.registry, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                             2.5, 5, 10, 30))
        self.dependency_errors = Counter(
            "hwc3d_dependency_errors_total", "Failed calls to outside services",
            ["dependency", "operation"], registry=self.registry)
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
        self.resyncs = Counter("hwc3d_ws_resyncs_total",
                               "resync signals: events may have been missed on a channel",
                               ["hub", "reason"], registry=self.registry)
        self.slow_consumers = Counter("hwc3d_ws_slow_consumer_closes_total",
                                      "Sockets closed for not reading", ["hub"],
                                      registry=self.registry)

    def observe_request(self, handler, seconds: float) -> None:
        """Count one finished request under its route pattern (not its raw path)."""
        route = getattr(handler, "route_name", None) or type(handler).__name__
        key = (handler.request.method, route, handler.get_status())
        children = self._request_children.get(key)
        if children is None:  # first request of this kind: look the label children up once
            children = self._request_children[key] = (
                self.requests.labels(key[0], route, str(key[2])), self.latency.labels(key[0], route))
        children[0].inc()
        children[1].observe(seconds)

    def observe_dependency(self, dependency: str, operation: str, seconds: float,
                           failed: bool) -> None:
        """Count one call to an outside service (`handlers/observe.py`)."""
        key = (dependency, operation)
        latency = self._dependency_children.get(key)
        if latency is None:  # first call of this kind: look the label child up once
            latency = self._dependency_children[key] = self.dependency_latency.labels(*key)
        latency.observe(seconds)
        if failed:
            self.dependency_errors.labels(dependency, operation).inc()
