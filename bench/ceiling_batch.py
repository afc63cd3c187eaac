"""The batch ceiling: raw asyncpg `executemany` of the same rows into a plain table.

The rows are the service's log rows for the same generated history (position,
event_id, type, schema_version, data, status, source, idempotency key, content hash,
fact key, recorded_at, api key name), built before timing; each batch of 1000 is one
`executemany` (one transaction) on one connection, in a loop bounded in time.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import msgspec

from bench import history as hist
from bench.ceiling_app import TABLE

INSERT: Final = """
INSERT INTO ceiling_events (position, event_id, type, schema_version, data, status, source,
                            idempotency_key, content_hash, fact_key, recorded_at, api_key_name)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9, $10, $11, $12)"""

_encode = msgspec.json.Encoder().encode

Row = tuple[Any, ...]


def rows_of(events: list[hist.Event]) -> list[Row]:
    """The log rows of the events, without a position (given at insert time)."""
    ids = {i: str(uuid.uuid4()) for i in range(len(events))}
    rows = []
    now = datetime.now(UTC)
    for e in hist.bind(events, ids):
        data = e["data"]
        fact_key = f"{e['type']}:{data.get('person_id', '')}:{data.get('org_id', '')}:{data.get('role', '')}"
        rows.append(
            (
                uuid.uuid4(),
                e["type"],
                1,
                _encode(data).decode(),
                e.get("status", "reported"),
                _encode(e["source"]).decode() if "source" in e else None,
                e.get("idempotency_key"),
                hashlib.sha256(_encode(e)).digest(),
                fact_key,
                now,
                "ceiling",
            )
        )
    return rows


async def run(dsn: str, rows: list[Row], seconds: float, batch: int = 1000) -> dict[str, Any]:
    """Insert the rows in batches (cycling through them) for `seconds`; events/s."""
    conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    try:
        await conn.execute(TABLE)
        position = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM ceiling_events"))
        done = 0
        started = time.perf_counter()
        while True:
            offset = done % len(rows)
            chunk = rows[offset : offset + batch]
            await conn.executemany(INSERT, [(position + i + 1, *row) for i, row in enumerate(chunk)])
            position += len(chunk)
            done += len(chunk)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        return {"events": done, "seconds": elapsed}
    finally:
        await conn.close()
