"""Running the projector's batches in a test, on the test's own connection."""

from __future__ import annotations

from service.projection import MEMORY_CLAIMS, Projection
from service.sql import QUERIES as Q
from service.store import Conn


async def project(
    conn: Conn, *, batch: int = 1000, memory_claims: int = MEMORY_CLAIMS, projection: Projection | None = None
) -> int:
    """Apply batches until the projection has caught up with the log; returns its checkpoint."""
    projection = projection or Projection(batch=batch, memory_claims=memory_claims)
    while (await projection.step(conn)).events:
        pass
    return int(await conn.fetchval(Q["checkpoint"]))
