"""Rebuild the bitemporal cache from the log, into shadow tables, then swap them in.

The projection tables are created afresh in a shadow schema by the same migration that
made them, filled by folding the whole log event by event (so every row gets the
position range it held in), then, under the log's append lock, brought up to the
events appended meanwhile and moved into place in one transaction. Readers keep
answering from the old tables until that transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from service import database, fold, projection, sql

PROJECTION_TABLES = ("membership_rows", "org_rows", "person_rows", "move_rows")
_FLUSH_EVERY = 5000

Progress = Callable[[int, int], None]


def _projection_migrations() -> list[str]:
    """The migrations that make the projection tables as they are now, in order."""
    found = [text for _, name, text in sql.migrations() if name.startswith("projections")]
    if not found:
        raise RuntimeError("the projections migration is missing")
    return found


async def rebuild(dsn: str, *, schema: str | None = None, progress: Progress | None = None) -> int:
    """Rebuild every projection table; returns the log position the new tables reflect."""
    admin = await database.connect(dsn, schema=schema)
    try:
        await database.migrate(admin)
        home = str(await admin.fetchval("SELECT current_schema()"))
        # One shadow schema per home schema, so rebuilds of different schemas never meet.
        shadow = f"{home}_rebuild"
        total = int(await admin.fetchval(sql.QUERIES["head_position"]))
        await admin.execute(f"DROP SCHEMA IF EXISTS {shadow} CASCADE")
        await admin.execute(f"CREATE SCHEMA {shadow}")
    finally:
        await admin.close()

    # Shadow first on the search path: the projection's queries write the new tables
    # while reading the log from the home schema.
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f"{shadow},{home}", "jit": "off"})
    try:
        for text in _projection_migrations():
            await conn.execute(text)
        # A GiST index built once over the finished table costs a fraction of growing it
        # row by row: set the shadow's aside and build them after the bulk of the load.
        deferred = [
            r["indexdef"]
            for r in await conn.fetch(sql.QUERIES["gist_indexes"], shadow, list(PROJECTION_TABLES))
        ]
        for definition in deferred:
            await conn.execute(f"DROP INDEX {shadow}.{definition.split()[2]}")
        cache = projection.Cache()
        cache.state = fold.State()
        done = await _fold_into(conn, cache, 0, total, progress, total)
        for definition in deferred:
            await conn.execute(definition)
        async with conn.transaction():
            await conn.execute(sql.QUERIES["lock_log"])
            head = int(await conn.fetchval(sql.QUERIES["head_position"]))
            done = await _fold_into(conn, cache, done, head, progress, head)
            for table in PROJECTION_TABLES:
                await conn.execute(f"DROP TABLE {home}.{table}")
                await conn.execute(f"ALTER TABLE {shadow}.{table} SET SCHEMA {home}")
            await conn.execute(f"DROP SCHEMA {shadow}")
        # Fresh tables have no statistics, and autovacuum may be off or late: without
        # them the planner guesses one row everywhere and can pick the wrong index.
        for table in PROJECTION_TABLES:
            await conn.execute(f"ANALYZE {home}.{table}")
        return done
    except BaseException:
        await conn.execute(f"DROP SCHEMA IF EXISTS {shadow} CASCADE")
        raise
    finally:
        await conn.close()


async def _fold_into(
    conn: asyncpg.Connection,
    cache: projection.Cache,
    after: int,
    upto: int,
    progress: Progress | None,
    total: int,
) -> int:
    position = after
    while position < upto:
        chunk = await projection.read_log(conn, position, min(upto, position + _FLUSH_EVERY))
        if not chunk:
            break
        changes = projection.Changes()
        for rec in chunk:
            cache.advance(rec, changes)
        await projection.write(conn, changes)
        position = chunk[-1].position
        if progress is not None:
            progress(position, total)
    return position
