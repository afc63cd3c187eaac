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
from service.api.contract import answer
from service.metrics import CONTENT_TYPE
from service.sql import QUERIES as Q

READY_TIMEOUT_SECONDS = 2


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    status: Literal["ok", "ready", "unavailable"]
    # Why the database is not ready: the exception's class name, never its message.
    reason: str | None = None
    # The log's last position, the projection's checkpoint, and how far behind it is.
    head: int | None = None
    projected: int | None = None
    lag: int | None = None
    # This process's part in the projector's election: active, standby, starting,
    # stopped, or off (`serve --no-projector`).
    projector: str | None = None


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
    description=f"Reads the log's head and the projection's checkpoint on a pooled connection within "
    f"{READY_TIMEOUT_SECONDS} s. While the database is unreachable the answer is 503; it turns back to 200 by "
    "itself once the database is back. A projection behind the log does not make the process unready: reads "
    "wait for it, and `lag` says by how many events.",
    tags=["operations"],
    responses={
        200: answer(Health, "The database answered."),
        503: answer(Health, "The database did not answer in time, or refused."),
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    role = projector_role(request)
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), pool(request).acquire() as conn:
            record = await conn.fetchrow(Q["head_and_checkpoint"])
    except Exception as error:
        # A probe answers, whatever went wrong; the pool reconnects on a later acquire.
        return json_answer(Health("unavailable", type(error).__name__, projector=role), status=503)
    assert record is not None
    head, projected = int(record["head"]), int(record["projected"])
    return json_answer(Health("ready", None, head, projected, head - projected, role))


def projector_role(request: Request[Any, Any, Any]) -> str:
    projector = request.app.state.projector
    return "off" if projector is None else str(projector.role)


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    state = request.app.state
    state.metrics.pools(state.pool, state.read_pool)
    state.metrics.projector(state.projector)
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), pool(request).acquire() as conn:
            record = await conn.fetchrow(Q["head_and_checkpoint"])
    except Exception:
        record = None  # the scrape still answers; the log gauges keep their last values
    if record is not None:
        state.metrics.log(int(record["head"]), int(record["projected"]))
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
