"""Prometheus metrics, one registry per app so tests and replicas do not share counters."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hiring_news_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hiring_news_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.events_appended = Counter(
            "hiring_news_events_appended", "events stored in the log", registry=self.registry
        )
        self.batch_size = Histogram(
            "hiring_news_append_batch_size",
            "events per POST /events",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000),
        )
        self.pool_in_use = Gauge(
            "hiring_news_pool_connections_in_use",
            "database connections checked out, by pool (write, read)",
            ["pool"],
            registry=self.registry,
        )
        self.pool_size = Gauge(
            "hiring_news_pool_connections",
            "database connections open, by pool (write, read)",
            ["pool"],
            registry=self.registry,
        )

        self.head = Gauge("hiring_news_log_head", "the log's last position", registry=self.registry)
        self.projected = Gauge(
            "hiring_news_projection_position", "the projection's checkpoint", registry=self.registry
        )
        self.lag = Gauge(
            "hiring_news_projection_lag", "events appended but not yet projected", registry=self.registry
        )
        self.active = Gauge(
            "hiring_news_projector_active",
            "1 while this process's projector holds the election lock",
            registry=self.registry,
        )
        self.projected_events = Gauge(
            "hiring_news_projector_events",
            "events this process's projector has applied since it started",
            registry=self.registry,
        )

    def log(self, head: int, projected: int) -> None:
        self.head.set(head)
        self.projected.set(projected)
        self.lag.set(head - projected)

    def projector(self, projector: Any) -> None:
        """Sample this process's projector (service.projector.Projector, or None)."""
        self.active.set(1 if projector is not None and projector.role == "active" else 0)
        self.projected_events.set(0 if projector is None else projector.events)

    def appended(self, stored: int, batch: int) -> None:
        self.events_appended.inc(stored)
        self.batch_size.observe(batch)

    def pools(self, write: Any, read: Any) -> None:
        """Sample the pools (asyncpg.Pool) at scrape time: a gauge needs no bookkeeping per request."""
        for name, pool in (("write", write), ("read", read)):
            self.pool_in_use.labels(name).set(pool.get_size() - pool.get_idle_size())
            self.pool_size.labels(name).set(pool.get_size())

    def render(self) -> bytes:
        return generate_latest(self.registry)
