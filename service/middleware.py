"""One ASGI middleware: request id, access log, metrics, security and rate-limit headers.

It wraps the whole app (`wrap`), outside Litestar's router and exception handling: a
middleware registered with `Litestar(middleware=...)` runs only once a route matched, so
it never saw the 404s and 405s Litestar answers itself, which then went out without the
security headers.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Final

import msgspec
import structlog
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from service import problems
from service.logging import get_logger
from service.metrics import Metrics
from service.ratelimit import STATE_KEY

log = get_logger("hiring_news.access")

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    # The pages (service/ui) load their script, style sheet and icon from the app itself,
    # and the feed page's script opens the live stream: 'self' for those, nothing inline,
    # nothing from anywhere else.
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"cross-origin-resource-policy", b"same-site"),
    (b"cache-control", b"no-cache"),
]

# uvicorn's httptools parser sets no limit on header size; 32 KiB is far above what any
# client of this API sends (browsers cap cookies at 4 KiB each).
MAX_HEADER_BYTES: Final = 32 * 1024

# A client's request id is echoed and logged, so only a plain token of it is kept.
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# `{org_id:str}` -> `{org_id}`: the label reads like the OpenAPI path.
_PARAM_TYPE: Final = re.compile(r"\{([^}:]+):[^}]+\}")


def wrap(app: Litestar, metrics: Metrics) -> None:
    """Put the middleware around everything the app answers (lifespan aside)."""
    app.asgi_handler = observe(metrics)(app.asgi_handler)


def observe(metrics: Metrics) -> Any:
    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            method = str(scope.get("method", ""))
            incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
            status = 500
            started = time.perf_counter()
            structlog.contextvars.bind_contextvars(request_id=request_id, method=method, path=scope["path"])

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    present = {name.lower() for name, _ in headers}
                    # A response that sets one itself (an event stream's Cache-Control) keeps it.
                    headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                    limits: dict[str, str] = scope.get("state", {}).get(STATE_KEY, {})
                    present = {name.lower() for name, _ in headers}
                    headers.extend(
                        (k.lower().encode(), v.encode())
                        for k, v in limits.items()
                        if k.lower().encode() not in present
                    )
                    message = {**message, "headers": headers}
                await send(message)

            try:
                if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                    await _refuse(
                        send_wrapper, 431, f"the request headers exceed {MAX_HEADER_BYTES} bytes", scope
                    )
                else:
                    await app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - started
                route = route_label(scope)
                metrics.requests.labels(method, route, str(status)).inc()
                metrics.latency.labels(method, route).observe(elapsed)
                log.info("request", status=status, ms=round(elapsed * 1000, 2))
                structlog.contextvars.clear_contextvars()

        return handle

    return middleware


async def _refuse(send: Send, status: int, detail: str, scope: Scope) -> None:
    body = msgspec.json.encode(problems.make_problem(status, detail, str(scope["path"])))
    headers = [
        (b"content-type", problems.PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


def route_label(scope: Scope) -> str:
    """The route template, never the raw path, so ids do not explode the metric's cardinality."""
    template = scope.get("path_template")
    if not template:
        return "unmatched"
    return _PARAM_TYPE.sub(r"{\1}", str(template))
