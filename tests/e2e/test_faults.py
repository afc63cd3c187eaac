"""Faults, injected for real: processes killed with SIGKILL, PostgreSQL restarted, two
projectors at once. Each test's docstring says what it injects, how often, and what it
counts; the counts are printed too (`pytest -s` or `-rP` shows them).

Processes are real `hiring-news` processes (tests/faults.py `Proc`), each on the test's
own database; clients are threads posting with httpx (`Writers`), each event with its own
idempotency key, retried with the same body until acknowledged. What survives is checked
by SQL: the log (`check_log`), rows open twice (`open_twice`), and the cache against a
fresh `hiring-news rebuild`, row for row.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from service.app import create_app
from tests.conftest import ADMIN, make_settings
from tests.faults import (
    LingeringProxy,
)


def report(name: str, **counts: Any) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in counts.items()))


# ---- a connection lost inside an append ---------------------------------------------------------


async def test_a_connection_lost_inside_an_append_is_a_503_not_a_500(pg_dsn: str, schema: str) -> None:
    """Injected: the server ends the append's own connection inside its transaction (a
    trigger on the log calls pg_terminate_backend on its backend), as a restart or an
    operator does to a busy connection.

    How often: once, then the trigger is dropped and the same request is posted again.

    Checked: the answer is a 503 problem with Retry-After, not a 500 (asyncpg reports the
    lost connection as an InterfaceError when the transaction block exits: the restart
    test first met it), nothing of it is stored, and the retry is stored once.
    """
    app = create_app(make_settings(), pg_dsn, schema=schema, projector=False)
    async with AsyncTestClient(app=app) as client:
        admin = await asyncpg.connect(pg_dsn)
        try:
            await admin.execute(
                f"""CREATE FUNCTION {schema}.drop_connection() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
                    CREATE TRIGGER drop_connection BEFORE INSERT ON {schema}.events
                    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.drop_connection()"""
            )
            body = {
                "type": "org.added",
                "idempotency_key": "lost-connection",
                "data": {"org_id": "acme", "name": "Acme", "kind": "company", "on": "2025"},
            }
            lost = await client.post("/events", json=body, headers=ADMIN)
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"].startswith("application/problem+json")
            assert lost.headers["retry-after"] == "2"
            assert await admin.fetchval(f"SELECT count(*) FROM {schema}.events") == 0

            await admin.execute(f"DROP TRIGGER drop_connection ON {schema}.events")
            retried = await client.post("/events", json=body, headers=ADMIN)
            assert retried.status_code == 201, retried.text
            assert await admin.fetchval(f"SELECT count(*) FROM {schema}.events") == 1
        finally:
            await admin.close()


async def _ready(client: AsyncTestClient, seconds: float) -> dict[str, Any]:  # type: ignore[type-arg]
    """/readyz once the projector is active and has caught up (the last answer otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        body: dict[str, Any] = (await client.get("/readyz")).json()
        if (body.get("projector") == "active" and body.get("lag") == 0) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_sessions_the_server_ended_are_503s_and_the_projector_takes_up_again(
    pg_dsn: str, schema: str
) -> None:
    """Injected: every session of one process (its pool's, its projector's, its projection
    watch's) ended the way the server ends them, with the FATAL admin_shutdown message, by
    a proxy that closes the sockets only 3 s later. The process meanwhile uses sessions
    the server is finished with but asyncpg has not seen close: the moment a restart
    opens between its FATAL and the EOF, which the restart test met about one run in four.

    How often: once.

    Checked: a POST meanwhile is a 503 problem with Retry-After, not a 500; once the
    sockets close, its retry (same key) is stored once; the projector, idle on its ended
    session when it came, is active again and catches up (lag 0), rather than stopping
    for good while /readyz still calls it active.
    """
    proxy = LingeringProxy(pg_dsn)
    try:
        app = create_app(make_settings(), proxy.dsn, schema=schema)
        async with AsyncTestClient(app=app) as client:
            body = {
                "type": "org.added",
                "idempotency_key": "after-the-end",
                "data": {"org_id": "acme", "name": "Acme", "kind": "company", "on": "2025"},
            }
            first = {**body, "idempotency_key": "before-the-end"}
            assert (await client.post("/events", json=first, headers=ADMIN)).status_code == 201
            assert (await _ready(client, 10)).get("lag") == 0

            assert proxy.end_sessions(linger=3.0) >= 3  # pool, projector, watch
            lost = await client.post("/events", json=body, headers=ADMIN)
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"].startswith("application/problem+json")
            assert lost.headers["retry-after"] == "2"

            statuses = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                retry = await client.post("/events", json=body, headers=ADMIN)
                statuses.append(retry.status_code)
                if retry.status_code in (200, 201):
                    break
                await asyncio.sleep(0.2)
            assert set(statuses) <= {201, 503} and statuses[-1] == 201, statuses
            ready = await _ready(client, 15)
            assert ready.get("projector") == "active" and ready.get("lag") == 0, ready
            assert ready.get("head") == 2
    finally:
        proxy.close()
    report("sessions ended", retries=len(statuses), statuses=statuses)
