"""Prometheus metrics, one registry per app so tests and replicas do not share counters."""

from __future__ import annotations

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
            "hiring_news_pool_connections_in_use", "database connections checked out", registry=self.registry
        )

    def appended(self, stored: int, batch: int) -> None:
        self.events_appended.inc(stored)
        self.batch_size.observe(batch)

    def render(self) -> bytes:
        return generate_latest(self.registry)
