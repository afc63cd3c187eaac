"""Liveness, readiness (the database really answers) and metrics.

None of these declares security, so the guard leaves them open and never rate-limits
them: an orchestrator's probes and a Prometheus scrape must not be refused.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get

from service.api.common import json_answer, pool
from service.metrics import CONTENT_TYPE
from service.openapi import answer

READY_TIMEOUT_SECONDS = 2


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    status: Literal["ok", "ready", "unavailable"]
    # Why the database is not ready: the exception's class name, never its message.
    reason: str | None = None


@get(
    "/healthz",
    summary="Liveness: the process answers",
    tags=["operations"],
    responses={200: answer(Health, "The process is up.")},
)
async def healthz() -> Response[bytes]:
    return json_answer(Health("ok"))


@get(
    "/readyz",
    summary="Readiness: the database answers",
    description=f"Runs `SELECT 1` on a pooled connection within {READY_TIMEOUT_SECONDS} s. While the database "
    "is unreachable the answer is 503; it turns back to 200 by itself once the database is back.",
    tags=["operations"],
    responses={
        200: answer(Health, "The database answered."),
        503: answer(Health, "The database did not answer in time, or refused."),
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), pool(request).acquire() as conn:
            await conn.fetchval("SELECT 1")
    except Exception as error:
        # A probe answers, whatever went wrong; the pool reconnects on a later acquire.
        return json_answer(Health("unavailable", type(error).__name__), status=503)
    return json_answer(Health("ready"))


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    state = request.app.state
    state.metrics.pools(state.pool, state.read_pool)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
