"""`rebuild` recreates exactly the cache the projector maintains, even while appends go on."""

from __future__ import annotations

import asyncio
from importlib import resources

import asyncpg

from service import database, importing
from service.projection import Projection
from service.rebuild import PROJECTION_TABLES, rebuild
from tests.projecting import project

ARTICLE = resources.files("service.examples").joinpath("article.jsonl").read_bytes().splitlines()


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[str, ...]]]:
    """Every projection table's rows, as sorted text (bytes as hex), but the time the
    checkpoint last moved."""
    tables = {}
    for table in PROJECTION_TABLES:
        rows = await conn.fetch(f"SELECT * FROM {table}")
        tables[table] = sorted(
            tuple(v.hex() if isinstance(v, bytes) else str(v) for k, v in r.items() if k != "updated_at")
            for r in rows
        )
    return tables


async def index_definitions(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = ANY($2::text[])",
        schema,
        list(PROJECTION_TABLES),
    )
    return sorted(r["indexdef"] for r in rows)


async def test_rebuild_reproduces_the_projection(conn: asyncpg.Connection, pg_dsn: str, schema: str) -> None:
    await importing.import_lines(conn, ARTICLE, batch_size=7)
    # Batches of 3, so the rows the rebuild writes in batches of 5000 are compared with
    # rows written a few events at a time.
    assert await project(conn, batch=3) == 28
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


async def test_rebuild_while_appending_and_projecting(
    conn: asyncpg.Connection, pg_dsn: str, schema: str
) -> None:
    await importing.import_lines(conn, ARTICLE[:10])
    await project(conn)
    writer = await database.connect(pg_dsn, schema=schema)
    live = await database.connect(pg_dsn, schema=schema)
    projection = Projection(batch=2)

    async def keep_projecting() -> None:
        while True:
            await projection.step(live)
            await asyncio.sleep(0.01)

    projecting = asyncio.create_task(keep_projecting())
    try:
        # Appends go on, and the live projector keeps up, while the rebuild runs.
        appending = asyncio.create_task(importing.import_lines(writer, ARTICLE[10:], batch_size=1))
        position = await rebuild(pg_dsn, schema=schema, batch=4)
        await appending
        # The live projector carries on from the swapped checkpoint.
        for _ in range(200):
            if await conn.fetchval("SELECT position FROM projection_checkpoint") == 28:
                break
            await asyncio.sleep(0.05)
    finally:
        projecting.cancel()
        await asyncio.wait([projecting])
        await writer.close()
        await live.close()
    assert position >= 10
    assert await conn.fetchval("SELECT position FROM projection_checkpoint") == 28
    after_concurrent = await snapshot(conn)
    await rebuild(pg_dsn, schema=schema)
    assert await snapshot(conn) == after_concurrent
