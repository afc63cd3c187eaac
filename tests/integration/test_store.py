"""The log on real PostgreSQL: append-only, gap-free, atomic, idempotent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from service import database, store
from service import events as ev


def joined(person: str = "ruoming-pang", org: str = "msl", key: str | None = None, **data: Any) -> ev.Event:
    body: dict[str, Any] = {
        "type": "member.joined",
        "source": {"url": "https://example.org/a", "published_at": "2025-07-08"},
        "data": {
            "person_id": person,
            "person_name": person.title(),
            "org_id": org,
            "org_name": org.upper(),
            "on": "2025-07",
            **data,
        },
    }
    if key is not None:
        body["idempotency_key"] = key
    return ev.decode(json.dumps(body).encode())[0]


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM events"))


async def test_append_assigns_positions_and_server_fields(conn: asyncpg.Connection) -> None:
    first = await store.append(conn, [joined(), joined("nat-friedman")])
    second = await store.append(conn, [joined("daniel-gross")])
    assert [a.position for a in first + second] == [1, 2, 3]
    assert all(not a.replayed for a in first + second)
    row = await conn.fetchrow("SELECT * FROM events WHERE position = 1")
    assert row is not None
    assert row["schema_version"] == 1
    assert row["fact_key"] == "member.joined:ruoming-pang:msl:member"
    assert row["recorded_at"] == first[0].recorded_at
    # recorded_at never goes backwards along positions.
    assert first[0].recorded_at <= second[0].recorded_at


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET status = 'confirmed'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_the_database_refuses_to_rewrite_the_log(conn: asyncpg.Connection, statement: str) -> None:
    await store.append(conn, [joined()])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute(statement)
    assert await count(conn) == 1


async def test_the_app_role_has_no_rewrite_grants(conn: asyncpg.Connection) -> None:
    grants = {
        r["privilege_type"]
        for r in await conn.fetch(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = 'hiring_news_app' AND table_name = 'events' AND table_schema = current_schema()"
        )
    }
    assert grants == {"SELECT", "INSERT"}


async def test_same_key_same_content_is_a_replay(conn: asyncpg.Connection) -> None:
    [original] = await store.append(conn, [joined(key="k1")])
    [again] = await store.append(conn, [joined(key="k1")])
    assert again.replayed and again.event_id == original.event_id and again.position == original.position
    assert await count(conn) == 1


async def test_same_key_other_content_is_a_conflict_and_stores_nothing(conn: asyncpg.Connection) -> None:
    await store.append(conn, [joined(key="k1")])
    with pytest.raises(store.IdempotencyConflict):
        await store.append(conn, [joined("nat-friedman", key="new"), joined(on="2025-08", key="k1")])
    assert await count(conn) == 1


async def test_a_batch_is_all_or_nothing(conn: asyncpg.Connection) -> None:
    no_name = ev.decode(b'{"type":"member.left","data":{"person_id":"ghost","org_id":"msl","on":"2025"}}')[0]
    with pytest.raises(store.UnknownReference) as info:
        await store.append(conn, [joined(), joined("nat-friedman"), no_name])
    assert info.value.index == 2 and info.value.pointer == "/data/person_id"
    assert await count(conn) == 0
    assert await conn.fetchval("SELECT count(*) FROM entities") == 0


async def test_an_id_introduced_earlier_in_the_batch_may_be_used_bare(conn: asyncpg.Connection) -> None:
    batch = ev.decode(
        b'[{"type":"org.added","data":{"org_id":"apple","name":"Apple","kind":"company"}},'
        b'{"type":"org.added","data":{"org_id":"apple-fm","name":"Foundation models","kind":"team",'
        b'"parent_id":"apple"}},'
        b'{"type":"person.added","data":{"person_id":"zhifeng-chen","name":"Zhifeng Chen"}},'
        b'{"type":"lead.appointed","data":{"person_id":"zhifeng-chen","org_id":"apple-fm","on":"2025-07"}}]'
    )
    appended = await store.append(conn, batch)
    assert [a.position for a in appended] == [1, 2, 3, 4]
    firsts = {
        r["id"]: r["first_position"] for r in await conn.fetch("SELECT id, first_position FROM entities")
    }
    assert firsts == {"apple": 1, "apple-fm": 2, "zhifeng-chen": 3}


async def test_unknown_parent_without_name_is_refused(conn: asyncpg.Connection) -> None:
    batch = ev.decode(
        b'{"type":"org.added","data":{"org_id":"t","name":"T","kind":"team","parent_id":"nowhere"}}'
    )
    with pytest.raises(store.UnknownReference) as info:
        await store.append(conn, batch)
    assert info.value.pointer == "/data/parent_id"


async def test_a_claim_must_target_a_stored_event(conn: asyncpg.Connection) -> None:
    [stored] = await store.append(conn, [joined()])
    denial = ev.decode(f'{{"type":"claim.denied","data":{{"event_id":"{stored.event_id}"}}}}'.encode())
    await store.append(conn, denial)
    stray = ev.decode(b'{"type":"claim.denied","data":{"event_id":"00000000-0000-0000-0000-000000000001"}}')
    with pytest.raises(store.UnknownReference):
        await store.append(conn, stray)
    assert await count(conn) == 2


async def test_concurrent_appends_get_gap_free_positions_in_commit_order(pg_dsn: str, schema: str) -> None:
    pool = await database.create_pool(pg_dsn, schema=schema, min_size=4, max_size=8)
    try:
        async with pool.acquire() as setup:
            await database.migrate(setup)

        async def writer(n: int) -> list[int]:
            positions = []
            for i in range(10):
                async with pool.acquire() as c:
                    [a] = await store.append(c, [joined(f"p-{n}-{i}")])
                    positions.append(a.position)
            return positions

        results = await asyncio.gather(*(writer(n) for n in range(8)))
        async with pool.acquire() as c:
            rows = await c.fetch("SELECT position, recorded_at FROM events ORDER BY position")
    finally:
        await pool.close()
    assert sorted(p for r in results for p in r) == list(range(1, 81))
    assert [r["position"] for r in rows] == list(range(1, 81))
    times = [r["recorded_at"] for r in rows]
    assert times == sorted(times)


LOG_LOCK = 7201940021


async def _append_past_a_held_lock(
    pg_dsn: str, schema: str, conn: asyncpg.Connection, batch: list[ev.Event], meanwhile: list[ev.Event]
) -> tuple[list[store.Appended] | BaseException, list[store.Appended]]:
    """Append `batch` on a connection of its own while `conn` holds the log's lock: once
    it waits for the lock (checked, not yet inserted), `conn` appends `meanwhile` and
    lets go. Answers what each append answered."""
    late = await database.connect(pg_dsn, schema=schema)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOG_LOCK)
        try:
            pending = asyncio.create_task(store.append(late, batch))
            waiting = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
            for _ in range(500):
                if await conn.fetchval(waiting, late.get_server_pid()):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the append never waited for the log's lock")
            # The lock is the session's, so this append takes it again (advisory locks stack).
            first = await store.append(conn, meanwhile)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOG_LOCK)
        second: list[store.Appended] | BaseException
        try:
            second = await pending
        except store.AppendError as error:
            second = error
        return second, first
    finally:
        await late.close()


async def test_a_key_stored_between_the_check_and_the_lock_is_a_replay(
    pg_dsn: str, schema: str, conn: asyncpg.Connection
) -> None:
    late, first = await _append_past_a_held_lock(
        pg_dsn, schema, conn, [joined(key="k1"), joined("nat-friedman", key="k2")], [joined(key="k1")]
    )
    assert [a.position for a in first] == [1]
    # Checked again under the lock: k1 is the stored event's, k2 goes after it.
    assert isinstance(late, list)
    assert [(a.position, a.replayed) for a in late] == [(1, True), (2, False)]
    assert (late[0].event_id, late[0].recorded_at) == (first[0].event_id, first[0].recorded_at)
    assert await count(conn) == 2


async def test_a_key_taken_between_the_check_and_the_lock_by_another_claim_is_a_conflict(
    pg_dsn: str, schema: str, conn: asyncpg.Connection
) -> None:
    late, _ = await _append_past_a_held_lock(
        pg_dsn,
        schema,
        conn,
        [joined("nat-friedman", key="k2"), joined(key="k1")],
        [joined("daniel-gross", key="k1")],
    )
    assert isinstance(late, store.IdempotencyConflict) and late.index == 1
    assert await count(conn) == 1  # the whole batch refused, k2 included


async def test_a_group_checked_before_another_append_goes_after_it(
    pg_dsn: str, schema: str, conn: asyncpg.Connection
) -> None:
    late, first = await _append_past_a_held_lock(
        pg_dsn, schema, conn, [joined(), joined("nat-friedman")], [joined("daniel-gross"), joined()]
    )
    assert isinstance(late, list)
    # It looked the log up empty and numbered its events 1 and 2; they went in at 3 and 4,
    # as it answers, and recorded no earlier than the append before it.
    assert [a.position for a in first] == [1, 2] and [a.position for a in late] == [3, 4]
    rows = await conn.fetch("SELECT position, event_id, recorded_at FROM events ORDER BY position")
    assert [(r["position"], r["event_id"], r["recorded_at"]) for r in rows[2:]] == [
        (a.position, a.event_id, a.recorded_at) for a in late
    ]
    assert rows[2]["recorded_at"] >= rows[1]["recorded_at"]
    # Both introduced ruoming-pang and msl; the log knows them from the first that committed.
    entities = await conn.fetch("SELECT kind, id, first_position FROM entities ORDER BY kind, id")
    assert [tuple(r) for r in entities] == [
        ("org", "msl", 1),
        ("person", "daniel-gross", 1),
        ("person", "nat-friedman", 4),
        ("person", "ruoming-pang", 2),
    ]


async def test_migrations_apply_once(conn: asyncpg.Connection) -> None:
    assert await database.migrate(conn) == []
    versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    assert versions == sorted(set(versions)) and versions[0] == 1


async def test_stored_events_read_back_as_accepted(conn: asyncpg.Connection) -> None:
    event = joined(key="k", title="Distinguished engineer")
    [a] = await store.append(conn, [event])
    row = await store.by_id(conn, a.event_id)
    assert row is not None
    assert store.recorded_from_row(row).event == event
    page = await store.page(conn, 0, 10, ["member.joined"])
    assert [r["position"] for r in page] == [1]
    assert await store.page(conn, 0, 10, ["org.added"]) == []
