"""Running the projector's batches in a test, on the test's own connection."""

from __future__ import annotations

import asyncpg

from service.projection import MEMORY_CLAIMS, Projection
from service.rebuild import PROJECTION_TABLES
from service.sql import QUERIES as Q
from service.store import Conn

# The row tables of the cache; the others are the fold's files, its structure indexes and
# the checkpoint.
ROWS = [t for t in PROJECTION_TABLES if not t.startswith("fold_") and t != "projection_checkpoint"]


async def project(
    conn: Conn, *, batch: int = 1000, memory_claims: int = MEMORY_CLAIMS, projection: Projection | None = None
) -> int:
    """Apply batches until the projection has caught up with the log; returns its checkpoint."""
    projection = projection or Projection(batch=batch, memory_claims=memory_claims)
    while (await projection.step(conn)).events:
        pass
    return int(await conn.fetchval(Q["checkpoint"]))


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[str, ...]]]:
    """Every projection table's rows, as sorted text (bytes as hex), but the time the
    checkpoint last moved: to compare a cache with another, row for row."""
    tables = {}
    for table in PROJECTION_TABLES:
        rows = await conn.fetch(f"SELECT * FROM {table}")
        tables[table] = sorted(
            tuple(v.hex() if isinstance(v, bytes) else str(v) for k, v in r.items() if k != "updated_at")
            for r in rows
        )
    return tables
