"""One ASGI middleware: request id, access log, metrics and security headers.

Written against raw ASGI rather than as a Litestar hook because it must also see the
requests Litestar answers itself (404 on unknown routes, 405, 413), and it is cheap.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.logging import get_logger
from service.metrics import Metrics

log = get_logger("hiring_news.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-cache"),
]


def observe(metrics: Metrics) -> Any:
    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            method = str(scope.get("method", ""))
            incoming = dict(scope["headers"]).get(b"x-request-id", b"")
            request_id = incoming.decode("latin-1")[:100] if incoming else uuid.uuid4().hex
            status = 500
            started = time.perf_counter()
            structlog.contextvars.bind_contextvars(request_id=request_id, method=method, path=scope["path"])

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    headers.extend(SECURITY_HEADERS)
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - started
                route = scope.get("path_template") or _route_of(scope)
                metrics.requests.labels(method, route, str(status)).inc()
                metrics.latency.labels(method, route).observe(elapsed)
                log.info("request", status=status, ms=round(elapsed * 1000, 2))
                structlog.contextvars.clear_contextvars()

        return handle

    return middleware


def _route_of(scope: Scope) -> str:
    # Label by route template, not raw path, so ids do not explode the metric's cardinality.
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    return sorted(paths)[0] if paths else "unmatched"
