"""Liveness, readiness (the database really answers) and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from service.api.common import json_answer, pool
from service.metrics import CONTENT_TYPE


@get("/healthz", summary="Liveness: the process answers", tags=["operations"])
async def healthz() -> Response[bytes]:
    return json_answer({"status": "ok"})


@get("/readyz", summary="Readiness: the database answers", tags=["operations"])
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        async with asyncio.timeout(2):
            async with pool(request).acquire() as conn:
                await conn.fetchval("SELECT 1")
    except (OSError, TimeoutError, Exception) as error:
        return json_answer({"status": "unavailable", "reason": type(error).__name__}, status=503)
    return json_answer({"status": "ready"})


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    state = request.app.state
    state.metrics.pool_in_use.set(state.pool.get_size() - state.pool.get_idle_size())
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
