"""Rebuild the projection from the log, into shadow tables, then swap them in.

The projection's tables (rows, the fold's files, the structure's indexes, the
checkpoint) are created afresh in a shadow schema by the migrations that made them, and
filled by the projector's own batches from position 0 (`service.projection`): one pass
over the log, rows written with COPY, the GiST indexes set aside until the bulk is
loaded. Then, holding the projection's write lock (the live projector waits, appends go
on), the shadow is brought up to the head and its tables moved into place in one
transaction, checkpoint included: the projector carries on from there. Readers keep
answering from the old tables until that transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from service import database, sql
from service.projection import Projection
from service.sql import QUERIES as Q

PROJECTION_TABLES = (
    "membership_rows",
    "org_rows",
    "person_rows",
    "move_rows",
    "projection_checkpoint",
    "fold_people",
    "fold_orgs",
    "fold_claims",
    "fold_statuses",
    "fold_org_edges",
    "fold_org_people",
)
REBUILD_BATCH = 5000

Progress = Callable[[int, int], None]


def _projection_migrations() -> list[str]:
    """The migrations that make the projection tables as they are now, in order."""
    found = [text for _, name, text in sql.migrations() if name.startswith("projections")]
    if not found:
        raise RuntimeError("the projections migration is missing")
    return found


async def rebuild(
    dsn: str,
    *,
    schema: str | None = None,
    progress: Progress | None = None,
    batch: int = REBUILD_BATCH,
) -> int:
    """Rebuild every projection table; returns the checkpoint the new tables start at."""
    home_conn = await database.connect(dsn, schema=schema)
    shadow_conn: asyncpg.Connection | None = None
    shadow = ""
    try:
        await database.migrate(home_conn)
        home = str(await home_conn.fetchval("SELECT current_schema()"))
        # One shadow schema per home schema, so rebuilds of different schemas never meet.
        shadow = f"{home}_rebuild"
        await home_conn.execute(f"DROP SCHEMA IF EXISTS {shadow} CASCADE")
        await home_conn.execute(f"CREATE SCHEMA {shadow}")
        # Shadow first on the search path: the batches write the new tables while
        # reading the log from the home schema.
        shadow_conn = await asyncpg.connect(
            dsn, server_settings={"search_path": f"{shadow},{home}", "jit": "off"}
        )
        for text in _projection_migrations():
            await shadow_conn.execute(text)
        # A GiST index built once over the finished table costs a fraction of growing it
        # row by row: set the shadow's aside and build them after the bulk of the load.
        deferred = [
            r["indexdef"] for r in await shadow_conn.fetch(Q["gist_indexes"], shadow, list(PROJECTION_TABLES))
        ]
        for definition in deferred:
            await shadow_conn.execute(f"DROP INDEX {shadow}.{definition.split()[2]}")
        projection = Projection(batch=batch)
        total = int(await home_conn.fetchval(Q["head_position"]))
        await _project(shadow_conn, projection, total, progress)
        for definition in deferred:
            await shadow_conn.execute(definition)
        async with home_conn.transaction():
            # The live projector finishes its batch and waits here; appends go on.
            await home_conn.execute(Q["projection_write_lock"])
            head = int(await home_conn.fetchval(Q["head_position"]))
            done = await _project(shadow_conn, projection, head, progress)
            for table in PROJECTION_TABLES:
                await home_conn.execute(f"DROP TABLE {home}.{table}")
                await home_conn.execute(f"ALTER TABLE {shadow}.{table} SET SCHEMA {home}")
            await home_conn.execute(f"DROP SCHEMA {shadow}")
        # Fresh tables have no statistics, and autovacuum may be off or late: without
        # them the planner guesses one row everywhere and can pick the wrong index.
        for table in PROJECTION_TABLES:
            await home_conn.execute(f"ANALYZE {home}.{table}")
        return done
    except BaseException:
        if shadow:
            await home_conn.execute(f"DROP SCHEMA IF EXISTS {shadow} CASCADE")
        raise
    finally:
        if shadow_conn is not None:
            await shadow_conn.close()
        await home_conn.close()


async def _project(
    conn: asyncpg.Connection, projection: Projection, upto: int, progress: Progress | None
) -> int:
    position = int(await conn.fetchval(Q["checkpoint"]))
    while position < upto:
        stats = await projection.step(conn, upto=upto)
        if not stats.events:
            break
        position = stats.position
        if progress is not None:
            progress(position, upto)
    if progress is not None:
        progress(position, upto)
    return position
