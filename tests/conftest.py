"""Fixtures shared by every suite: a PostgreSQL to test against, and a clean place in it.

With DATABASE_URL set, the tests use that server; without it, they start the embedded
PostgreSQL once for the session, exactly as `hiring-news serve` would. Every test gets
its own schema (in-process tests) or its own database (tests that start a server
process), so no test sees another's rows and order never matters.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service import database
from service.app import create_app
from service.settings import Settings

BOOTSTRAP_KEY = "test-bootstrap-key"


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with database.embedded_server(tmp_path_factory.mktemp("embedded")) as dsn:
        yield dsn


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
async def schema(pg_dsn: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.close()


@pytest.fixture
async def conn(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A migrated connection in a fresh schema."""
    connection = await database.connect(pg_dsn, schema=schema)
    await database.migrate(connection)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def fresh_database(pg_dsn: str) -> AsyncIterator[str]:
    """The DSN of a new, empty database, dropped afterwards: for server processes."""
    name = f"hn_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(pg_dsn, name)
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"bootstrap_key": BOOTSTRAP_KEY, "pool_min": 1, "pool_max": 5}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def client(pg_dsn: str, schema: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(make_settings(), pg_dsn, schema=schema)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
ROOT = Path(__file__).resolve().parent.parent
