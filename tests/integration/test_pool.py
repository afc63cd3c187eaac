"""The pool skips asyncpg's reset query on release: what it would reset never outlives a request."""

from __future__ import annotations

from typing import Any

from service import database

LOG_LOCK = 7201940021


async def test_a_connection_released_mid_transaction_comes_back_clean(pg_dsn: str, schema: str) -> None:
    pool = await database.create_pool(pg_dsn, schema=schema, min_size=1, max_size=1)
    other = await database.connect(pg_dsn, schema=schema)
    try:
        # A handler cut short inside an append: the transaction and its lock are open.
        async with pool.acquire() as conn:
            await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({LOG_LOCK})")
            assert not await other.fetchval("SELECT pg_try_advisory_lock($1)", LOG_LOCK)
        async with pool.acquire() as conn:  # the same one: the pool holds one
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW search_path") == schema
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOG_LOCK)
        await other.execute("SELECT pg_advisory_unlock($1)", LOG_LOCK)
    finally:
        await other.close()
        await pool.close()


async def test_the_pool_skips_the_reset_query(pg_dsn: str, schema: str) -> None:
    pool = await database.create_pool(pg_dsn, schema=schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            # asyncpg counts the queries a connection ran (to recycle it after max_queries).
            proxy: Any = conn
            protocol = proxy._con._protocol
            before = protocol.queries_count
        async with pool.acquire() as conn:
            # Only our own query counted since: nothing ran on release.
            await conn.fetchval("SELECT 1")
            assert protocol.queries_count == before + 1
    finally:
        await pool.close()
