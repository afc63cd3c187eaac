"""What a run leaves in its database, checked by SQL: the log (positions 1..N, each key
once, every acknowledged event where its answer said) and the projection cache against a
fresh `hiring-news rebuild` of the same log.

Shared by the soak (`bench.soak`) and the fault tests (`tests/faults.py`), so it imports
neither pytest nor anything under tests/; problems are returned as sentences, for the
caller to assert on or to report.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Final

import asyncpg

from service.rebuild import PROJECTION_TABLES

# The row tables of the cache; the others are the fold's files, its structure indexes and
# the checkpoint.
ROWS: Final = [t for t in PROJECTION_TABLES if not t.startswith("fold_") and t != "projection_checkpoint"]

Snapshot = dict[str, list[tuple[str, ...]]]


async def snapshot(conn: asyncpg.Connection) -> Snapshot:
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


_OPEN_TWICE: Final = {
    "membership_rows": "person_id",
    "move_rows": "person_id",
    "person_rows": "person_id",
    "org_rows": "org_id",
}
assert set(_OPEN_TWICE) == set(ROWS)


async def open_twice(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows the cache holds open twice (same id and key, both open): a batch applied twice."""
    found = {}
    for table, ident in _OPEN_TWICE.items():
        found[table] = int(
            await conn.fetchval(
                f"SELECT count(*) FROM (SELECT {ident}, row_key FROM {table} WHERE upper_inf(positions) "
                "GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
            )
        )
    return {t: n for t, n in found.items() if n}


async def cache(dsn: str) -> tuple[Snapshot, dict[str, int]]:
    """The projection tables (snapshot) and the rows open twice."""
    conn = await asyncpg.connect(dsn)
    try:
        return await snapshot(conn), await open_twice(conn)
    finally:
        await conn.close()


def differences(live: Snapshot, fresh: Snapshot) -> dict[str, tuple[int, int, int]]:
    """Per table that differs: (rows only in the live cache, rows only in the rebuild, rows)."""
    found = {}
    for table in sorted(set(live) | set(fresh)):
        a, b = Counter(live.get(table, [])), Counter(fresh.get(table, []))
        if a != b:
            found[table] = (sum((a - b).values()), sum((b - a).values()), sum(b.values()))
    return found


def rebuild(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`hiring-news rebuild` on the database of `env` (its DATABASE_URL), as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def log_problems(dsn: str, acknowledged: Mapping[str, tuple[int, str]], sent: set[str]) -> list[str]:
    """What is wrong with the log, given what clients were answered: positions must be
    exactly 1..N, each idempotency key stored once, every acknowledged event stored at the
    position and with the id its answer gave, and nothing stored that no client sent."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT position, idempotency_key, event_id FROM events ORDER BY position")
    finally:
        await conn.close()
    problems = []
    gaps = [(i, r["position"]) for i, r in enumerate(rows, 1) if r["position"] != i]
    if gaps:
        problems.append(f"positions are not 1..{len(rows)}: position {gaps[0][1]} where {gaps[0][0]} was due")
    twice = [k for k, n in Counter(r["idempotency_key"] for r in rows).items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} idempotency keys stored more than once, e.g. {twice[0]!r}")
    stored = {r["idempotency_key"]: (int(r["position"]), str(r["event_id"])) for r in rows}
    missing = [k for k in acknowledged if k not in stored]
    if missing:
        problems.append(f"{len(missing)} acknowledged events are not in the log, e.g. {missing[0]!r}")
    moved = [k for k, at in acknowledged.items() if k in stored and stored[k] != at]
    if moved:
        k = moved[0]
        problems.append(
            f"{len(moved)} acknowledged events are stored elsewhere than answered, e.g. {k!r}: "
            f"answered {acknowledged[k]}, stored {stored[k]}"
        )
    unsent = [k for k in stored if k not in sent]
    if unsent:
        problems.append(f"{len(unsent)} stored events were never sent, e.g. {unsent[0]!r}")
    return problems
