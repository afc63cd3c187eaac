"""Running the projector's batches in a test, on the test's own connection."""

from __future__ import annotations

# The cache's snapshot lives with the soak's checks (bench imports nothing from tests/);
# imported here under its own names for the tests that know it from this module.
from bench.checks import ROWS as ROWS
from bench.checks import snapshot as snapshot
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
