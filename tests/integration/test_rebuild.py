"""`rebuild` recreates exactly the cache that appends maintained, even while appends go on."""

from __future__ import annotations

import asyncio
from importlib import resources

import asyncpg

from service import database, importing, projection
from service.rebuild import PROJECTION_TABLES, rebuild

ARTICLE = resources.files("service.examples").joinpath("article.jsonl").read_bytes().splitlines()


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[str, ...]]]:
    tables = {}
    for table in PROJECTION_TABLES:
        rows = await conn.fetch(f"SELECT * FROM {table}")
        tables[table] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return tables


async def index_definitions(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = ANY($2::text[])",
        schema,
        list(PROJECTION_TABLES),
    )
    return sorted(r["indexdef"] for r in rows)


async def test_rebuild_reproduces_the_cache(conn: asyncpg.Connection, pg_dsn: str, schema: str) -> None:
    await importing.import_lines(conn, ARTICLE, projection.Projector(), batch_size=7)
    before = await snapshot(conn)
    assert sum(len(rows) for rows in before.values()) > 30
    indexes = await index_definitions(conn, schema)
    assert any("USING gist" in d for d in indexes)  # rebuild sets these aside while it loads
    progress: list[tuple[int, int]] = []
    position = await rebuild(
        pg_dsn, schema=schema, progress=lambda done, total: progress.append((done, total))
    )
    assert position == 28
    assert progress[-1] == (28, 28)
    assert await snapshot(conn) == before
    assert await index_definitions(conn, schema) == indexes
    shadows = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", f"{schema}_rebuild")
    assert shadows == 0


async def test_rebuild_while_appending(conn: asyncpg.Connection, pg_dsn: str, schema: str) -> None:
    await importing.import_lines(conn, ARTICLE[:10], projection.Projector())
    writer = await database.connect(pg_dsn, schema=schema)
    try:
        # Appends go on (from another connection, with its own fold) while rebuilding.
        appending = asyncio.create_task(
            importing.import_lines(writer, ARTICLE[10:], projection.Projector(), batch_size=1)
        )
        position = await rebuild(pg_dsn, schema=schema)
        await appending
    finally:
        await writer.close()
    assert position >= 10
    after_concurrent = await snapshot(conn)
    await rebuild(pg_dsn, schema=schema)
    assert await snapshot(conn) == after_concurrent


async def test_a_warmed_projector_appends_what_a_rebuild_would_write(
    conn: asyncpg.Connection, pg_dsn: str, schema: str
) -> None:
    first = projection.Projector()
    await importing.import_lines(conn, ARTICLE[:20], first)
    # A new process: its projector folds the log at start, then appends on top of it.
    warmed = projection.Projector()
    assert await warmed.warm(conn) == 20
    assert warmed.cache.current == first.cache.current
    await importing.import_lines(conn, ARTICLE[20:], warmed)
    written = await snapshot(conn)
    await rebuild(pg_dsn, schema=schema)
    assert await snapshot(conn) == written
    assert await warmed.warm(conn) == 28  # already warm: nothing folded again
