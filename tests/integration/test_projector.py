"""The projector process's loop (service/projector.py) on real PostgreSQL: it keeps going
after a fault of its own code, from the checkpoint, rather than end while the process
says it runs one."""

from __future__ import annotations

import asyncio
import gc
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


async def test_what_a_batch_leaves_is_frozen_out_of_collections_until_the_state_is_dropped(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projection, "UNFREEZE_BATCHES", 2)
    gc.unfreeze()
    try:
        keeping = projection.Projection(batch=1, memory_claims=3)
        await store.append(conn, [joined(name) for name in ("ada", "bob", "cy", "di", "ed", "flo")])
        frozen = []
        for _ in range(6):
            stats = await keeping.step(conn)
            assert stats.events == 1
            frozen.append((gc.get_freeze_count() > 0, keeping.memory is not None))
        # Frozen after each batch, until two batches are frozen: the third thaws. The
        # fourth thaws too: the State held more than 3 claims and was dropped.
        assert frozen == [
            (True, True),
            (True, True),
            (False, True),
            (False, False),
            (True, True),
            (True, True),
        ]
        failing = projection.Projection(batch=1)
        await store.append(conn, [joined("gus")])
        monkeypatch.setattr(projection.Batch, "run", _raises)
        assert gc.get_freeze_count() > 0
        with pytest.raises(RuntimeError):
            await failing.step(conn)
        assert gc.get_freeze_count() == 0  # after a failure too
    finally:
        gc.unfreeze()


async def _raises(self: projection.Batch, records: Any) -> None:
    raise RuntimeError("a bug in a rule")
