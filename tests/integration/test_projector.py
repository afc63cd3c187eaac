"""The projector process's loop (service/projector.py) on real PostgreSQL: it keeps going
after a fault of its own code, from the checkpoint, rather than end while the process
says it runs one."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service import projection, store
from service.projector import Projector
from tests.bodies import joined_event as joined


async def test_a_fault_in_a_batch_is_logged_and_the_projector_starts_again(
    conn: asyncpg.Connection, pg_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append(conn, [joined("ada"), joined("bob")])
    run = projection.Batch.run
    faults = 0

    async def failing_once(self: projection.Batch, records: Any) -> None:
        nonlocal faults
        if faults == 0:
            faults += 1
            raise RuntimeError("a bug in a rule")
        await run(self, records)

    monkeypatch.setattr(projection.Batch, "run", failing_once)
    projector = Projector(pg_dsn, schema=schema, election_seconds=0.05)
    projector.start()
    try:
        for _ in range(200):
            if await conn.fetchval("SELECT position FROM projection_checkpoint") == 2:
                break
            await asyncio.sleep(0.05)
        assert await conn.fetchval("SELECT position FROM projection_checkpoint") == 2
        assert faults == 1
        assert (projector.role, projector.failures) == ("active", 0)
    finally:
        await projector.stop()
    assert str(projector.role) == "stopped"
