"""A slow or exhausted database gives a 503 problem within a bound; nothing hangs.

Each test makes the database slow for real, from another connection: a table locked
against readers, the only pooled connection held, the log's lock held, a long reader.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from service import database
from service.app import create_app
from tests.conftest import ADMIN, make_settings
from tests.e2e.server import environment, serving
from tests.e2e.test_events_http import joined, post

LOG_LOCK = 7201940021


def _client(pg_dsn: str, schema: str, **settings: Any) -> AsyncTestClient:  # type: ignore[type-arg]
    return AsyncTestClient(app=create_app(make_settings(**settings), pg_dsn, schema=schema))


@pytest.fixture
async def other(pg_dsn: str, schema: str, conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """Another session on the test's schema (migrated by `conn`)."""
    session = await database.connect(pg_dsn, schema=schema)
    try:
        yield session
    finally:
        await session.close()


def assert_503(response: Any, reason: str, seconds: float, bound: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"]
    assert seconds < bound


async def test_a_statement_past_its_timeout_is_a_503(
    pg_dsn: str, schema: str, other: asyncpg.Connection
) -> None:
    async with _client(pg_dsn, schema, statement_timeout_seconds=0.3, lock_timeout_seconds=30) as client:
        assert (await post(client, joined("ada"))).status_code == 201
        assert (await client.get("/orgs/msl/roster")).status_code == 200
        async with other.transaction():
            # Readers of the roster's table wait on this lock: the statement runs past its bound.
            await other.execute("LOCK TABLE membership_rows IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            answer = await client.get("/orgs/msl/roster", params={"as_of": "1"})
            assert_503(answer, "HIRING_NEWS_STATEMENT_TIMEOUT", time.monotonic() - started, 5)
        assert (await client.get("/orgs/msl/roster", params={"as_of": "1"})).status_code == 200


def test_no_pooled_connection_in_time_is_a_503(fresh_database: str) -> None:
    # A real server (the in-process test client answers one request at a time), with a
    # pool of one connection waited for at most 0.3 s.
    env = {
        **environment(fresh_database),
        "HIRING_NEWS_POOL_MIN": "1",
        "HIRING_NEWS_POOL_MAX": "1",
        "HIRING_NEWS_ACQUIRE_TIMEOUT": "0.3",
        "HIRING_NEWS_STATEMENT_TIMEOUT": "30",
    }
    with serving(env) as (base, _):
        assert httpx.post(f"{base}/events", json=joined("ada"), headers=ADMIN).status_code == 201

        async def run() -> None:
            locker = await asyncpg.connect(fresh_database)
            try:
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    async with locker.transaction():
                        await locker.execute("LOCK TABLE membership_rows IN ACCESS EXCLUSIVE MODE")
                        # The first read holds the pool's only connection, waiting on the
                        # lock; the second finds no connection within 0.3 s.
                        first = asyncio.ensure_future(http.get("/orgs/msl/roster", params={"as_of": "1"}))
                        await asyncio.sleep(0.5)
                        started = time.monotonic()
                        second = await http.get("/people", params={"as_of": "1"})
                        assert_503(second, "HIRING_NEWS_ACQUIRE_TIMEOUT", time.monotonic() - started, 5)
                    assert (await first).status_code == 200
            finally:
                await locker.close()

        asyncio.run(run())


async def test_a_wait_on_the_log_lock_past_its_timeout_is_a_503_and_stores_nothing(
    pg_dsn: str, schema: str, other: asyncpg.Connection
) -> None:
    async with _client(pg_dsn, schema, lock_timeout_seconds=0.3) as client:
        await other.execute("SELECT pg_advisory_lock($1)", LOG_LOCK)  # an append stuck holding it
        try:
            started = time.monotonic()
            answer = await post(client, joined("ada"))
            assert_503(answer, "HIRING_NEWS_LOCK_TIMEOUT", time.monotonic() - started, 5)
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", LOG_LOCK)
        assert await other.fetchval("SELECT count(*) FROM events") == 0
        assert (await post(client, joined("ada"))).status_code == 201


async def test_a_long_reader_does_not_block_appends(
    pg_dsn: str, schema: str, other: asyncpg.Connection
) -> None:
    async with _client(pg_dsn, schema) as client:
        assert (await post(client, joined("ada"))).status_code == 201
        async with other.transaction(isolation="repeatable_read"):
            # A reader holding a snapshot of the log and every projection table, for seconds.
            await other.fetch("SELECT * FROM events, membership_rows, projection_checkpoint")
            reading = asyncio.ensure_future(other.execute("SELECT pg_sleep(3) FROM events"))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            for person in ("bob", "cy", "dee"):
                assert (await post(client, joined(person))).status_code == 201
            assert time.monotonic() - started < 2
            roster = await client.get("/orgs/msl/roster", params={"on": "2025-08-01"})
            assert roster.json()["as_of"] == 4
            await reading
