"""The ceiling: a bare Litestar + msgspec + asyncpg app, served like the service.

POST /events decodes the same JSON with msgspec (no validation beyond the decode), and
INSERTs the same row shape as the service's log into a plain table: no advisory lock,
no idempotency or reference checks, no projection. GET /orgs/{id}/roster does one
indexed SELECT on the service's own membership cache (the GiST index on org_id,
positions, valid) and returns the rows as JSON: what a roster costs at the least.

`python -m bench.ceiling_app --port P` with DATABASE_URL set; one uvicorn process, the
same server settings as `hiring-news serve`, the same pool (size from HIRING_NEWS_POOL_MIN /
HIRING_NEWS_POOL_MAX, 2 / 10; no reset query on release).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, Final

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get, post

from service.database import keep_session

TABLE: Final = """
CREATE TABLE IF NOT EXISTS ceiling_events (
    position        bigserial   PRIMARY KEY,
    event_id        uuid        NOT NULL,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    status          text        NOT NULL,
    source          jsonb,
    idempotency_key text,
    content_hash    bytea       NOT NULL,
    fact_key        text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    api_key_name    text
)"""

INSERT: Final = """
INSERT INTO ceiling_events (event_id, type, schema_version, data, status, source, idempotency_key,
                            content_hash, fact_key, api_key_name)
VALUES ($1, $2, 1, $3::jsonb, $4, $5::jsonb, $6, $7, $8, 'ceiling')
RETURNING position, recorded_at"""

ROSTER: Final = """
SELECT person_id, org_id, role, title, start_value, start_earliest, start_latest, status,
       sources::text AS sources
FROM membership_rows
WHERE org_id = $1 AND positions @> $2::bigint AND valid @> $3::date"""


_NULL: Final = msgspec.Raw(b"null")


class Keys(msgspec.Struct):
    person_id: str | None = None
    org_id: str | None = None
    role: str | None = None


class Loose(msgspec.Struct, kw_only=True):
    type: str
    idempotency_key: str | None = None
    status: str = "reported"
    source: msgspec.Raw = _NULL  # msgspec.Raw takes no union: JSON null stands for none
    data: msgspec.Raw


class Accepted(msgspec.Struct):
    event_id: uuid.UUID
    position: int
    recorded_at: str
    idempotency_key: str | None
    replayed: bool


class Answer(msgspec.Struct):
    events: list[Accepted]


class RosterRow(msgspec.Struct):
    person_id: str
    org_id: str
    role: str
    title: str | None
    start_value: str | None
    start_earliest: date | None
    start_latest: date | None
    status: str
    sources: msgspec.Raw


class Roster(msgspec.Struct):
    org_id: str
    on: date
    as_of: int
    members: list[RosterRow]


_decode: Final = msgspec.json.Decoder(Loose).decode
_keys: Final = msgspec.json.Decoder(Keys).decode
_encode: Final = msgspec.json.Encoder().encode


def _pool(request: Request[Any, Any, Any]) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


@post("/events", status_code=201)
async def post_event(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = await request.body()
    try:
        event = _decode(body)
        keys = _keys(event.data)
    except msgspec.DecodeError as error:
        return Response(_encode({"detail": str(error)}), status_code=422, media_type="application/json")
    event_id = uuid.uuid4()
    fact_key = f"{event.type}:{keys.person_id or ''}:{keys.org_id or ''}:{keys.role or ''}"
    async with _pool(request).acquire() as conn:
        row = await conn.fetchrow(
            INSERT,
            event_id,
            event.type,
            bytes(event.data).decode(),
            event.status,
            None if bytes(event.source) == b"null" else bytes(event.source).decode(),
            event.idempotency_key,
            hashlib.sha256(body).digest(),
            fact_key,
        )
    assert row is not None
    answer = Answer(
        [Accepted(event_id, row["position"], row["recorded_at"].isoformat(), event.idempotency_key, False)]
    )
    return Response(_encode(answer), status_code=201, media_type="application/json")


@get("/orgs/{org_id:str}/roster")
async def roster(request: Request[Any, Any, Any], org_id: str, on: date, as_of: int) -> Response[bytes]:
    async with _pool(request).acquire() as conn:
        rows = await conn.fetch(ROSTER, org_id, as_of, on)
    members = [RosterRow(**dict(r.items())) for r in rows]
    return Response(_encode(Roster(org_id, on, as_of, members)), media_type="application/json")


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(dsn: str) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings = {"application_name": "hiring-news-ceiling", "jit": "off"}
        conn = await asyncpg.connect(dsn, server_settings=settings)
        try:
            await conn.execute(TABLE)
        finally:
            await conn.close()
        app.state.pool = await asyncpg.create_pool(
            dsn,
            min_size=int(os.environ.get("HIRING_NEWS_POOL_MIN") or 2),
            max_size=int(os.environ.get("HIRING_NEWS_POOL_MAX") or 10),
            server_settings=settings,
            # The service's pool skips asyncpg's reset query on release; so does the
            # ceiling, or the ratio would measure a pool setting instead of the work.
            reset=keep_session,
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    return Litestar(route_handlers=[post_event, roster, healthz], lifespan=[lifespan], logging_config=None)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    app = create_app(os.environ["DATABASE_URL"])
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
    )


if __name__ == "__main__":
    main()
