"""Group commit on real PostgreSQL: store.append_many, and the Appender that feeds it.

Each batch of a group keeps the semantics of a lone append: all or nothing, checked in
order against the log and the batches before it; a refused batch stores nothing and
leaves the others alone; a database failure stores nothing of any batch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from service import database, store
from service import events as ev
from service.appender import GROUP_EVENTS, Appender, Closed
from service.store import Batch, Conn
from tests.bodies import joined_event as joined


async def fail_inserts(conn: Conn, times: int | None = None) -> None:
    """Make the database itself fail inserts into the log (the first `times` of them, or
    all): a trigger raising what a lost table raises. A sequence counts the failures, as
    it is not rolled back with them."""
    await conn.execute("CREATE SEQUENCE failures")
    limit = "NULL" if times is None else str(times)
    await conn.execute(
        f"""CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {limit} IS NULL OR nextval('failures') <= {limit} THEN
                    RAISE EXCEPTION 'injected failure' USING ERRCODE = 'undefined_table';
                END IF;
                RETURN NULL;
            END $$"""
    )
    await conn.execute(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION fail_insert()"
    )


def org_added(org: str, key: str | None = None) -> ev.Event:
    body: dict[str, Any] = {"type": "org.added", "data": {"org_id": org, "name": org.title(), "kind": "lab"}}
    if key is not None:
        body["idempotency_key"] = key
    return ev.decode(json.dumps(body).encode())[0]


async def rows(conn: Conn) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT position, idempotency_key, api_key_name, recorded_at, data->>'person_id' AS person "
            "FROM events ORDER BY position"
        )
    )


def appended(outcome: store.Outcome) -> list[store.Appended]:
    assert not isinstance(outcome, store.AppendError), outcome
    return outcome


async def test_a_refused_batch_in_the_middle_leaves_the_others_stored(conn: asyncpg.Connection) -> None:
    await store.append(conn, [joined("stored-before", key="k-old")])
    outcomes = await store.append_many(
        conn,
        [
            Batch([org_added("new-lab"), joined("alice", key="k-a")], "scraper-a"),
            # Refused: the key was stored before with other content. Nothing of it is kept,
            # not even its first event.
            Batch([joined("bob", key="k-b"), joined("other", key="k-old")], "scraper-b"),
            # Uses the lab the first batch introduced, by id alone.
            Batch([joined("carol", "new-lab", key="k-c", named=False, person_name="Carol")], "scraper-c"),
            # Refused: an unknown id without a name.
            Batch([joined("dave", key="k-d"), joined("ghost", named=False)], "scraper-d"),
            # The first batch's key with the same claim: a replay of it.
            Batch([joined("alice", key="k-a"), joined("erin", key="k-e")], "scraper-e"),
        ],
    )
    first, conflict, third, unknown, fifth = outcomes

    assert isinstance(conflict, store.IdempotencyConflict)
    assert (conflict.index, conflict.pointer) == (1, "/idempotency_key")
    assert isinstance(unknown, store.UnknownReference)
    assert (unknown.index, unknown.pointer) == (1, "/data/person_id")

    a = appended(first)
    assert [x.position for x in a] == [2, 3] and not any(x.replayed for x in a)
    [c] = appended(third)
    assert c.position == 4 and not c.replayed
    replay, e = appended(fifth)
    assert replay.replayed and (replay.event_id, replay.position) == (a[1].event_id, 3)
    assert e.position == 5 and not e.replayed

    stored = await rows(conn)
    assert [r["position"] for r in stored] == [1, 2, 3, 4, 5]
    assert [r["idempotency_key"] for r in stored] == ["k-old", None, "k-a", "k-c", "k-e"]
    # Each event carries its own request's key name.
    assert [r["api_key_name"] for r in stored] == [None, "scraper-a", "scraper-a", "scraper-c", "scraper-e"]
    # One group, one time; never before the log's last one.
    assert (
        len({r["recorded_at"] for r in stored[1:]}) == 1
        and stored[0]["recorded_at"] <= stored[1]["recorded_at"]
    )
    entities = {(r["kind"], r["id"]): r["first_position"] for r in await conn.fetch("SELECT * FROM entities")}
    assert entities == {
        ("person", "stored-before"): 1,
        ("org", "msl"): 1,
        ("org", "new-lab"): 2,
        ("person", "alice"): 3,
        ("person", "carol"): 4,
        ("person", "erin"): 5,
    }


async def test_a_refused_batch_introduces_nothing_and_takes_no_key(conn: asyncpg.Connection) -> None:
    outcomes = await store.append_many(
        conn,
        [
            # Introduces lab-x and takes key k-x, then fails: neither may count for later batches.
            Batch([org_added("lab-x", key="k-x"), joined("ghost", named=False)]),
            Batch([joined("zoe", "lab-x", named=False, person_name="Zoe")]),
            Batch([org_added("lab-y", key="k-x")]),
        ],
    )
    failed, uses_lab_x, same_key = outcomes
    assert isinstance(failed, store.UnknownReference) and failed.index == 1
    assert isinstance(uses_lab_x, store.UnknownReference) and uses_lab_x.pointer == "/data/org_id"
    [y] = appended(same_key)
    assert y.position == 1 and not y.replayed
    assert [r["idempotency_key"] for r in await rows(conn)] == ["k-x"]


async def test_a_key_taken_earlier_in_the_group_with_other_content_is_a_conflict(
    conn: asyncpg.Connection,
) -> None:
    first, second = await store.append_many(
        conn, [Batch([joined("alice", key="k")]), Batch([joined("alice", key="k", title="CTO")])]
    )
    assert appended(first)[0].position == 1
    assert isinstance(second, store.IdempotencyConflict) and "position 1" in second.reason
    assert len(await rows(conn)) == 1


async def test_a_key_repeated_within_a_batch(conn: asyncpg.Connection) -> None:
    # The same claim twice is one claim; HTTP refuses such a batch earlier, the store
    # still answers it by the one rule.
    one, again = await store.append(conn, [joined("alice", key="k"), joined("alice", key="k")])
    assert not one.replayed and again.replayed and again.position == one.position == 1
    with pytest.raises(store.IdempotencyConflict) as info:
        await store.append(conn, [joined("bob", key="k2"), joined("bob", key="k2", title="CTO")])
    assert info.value.index == 1
    assert len(await rows(conn)) == 1


async def test_a_claim_may_target_an_event_stored_earlier(conn: asyncpg.Connection) -> None:
    [target] = await store.append(conn, [joined("alice")])
    denial = ev.decode(f'{{"type":"claim.denied","data":{{"event_id":"{target.event_id}"}}}}'.encode())
    stray = ev.decode(b'{"type":"claim.denied","data":{"event_id":"00000000-0000-0000-0000-000000000001"}}')
    good, bad = await store.append_many(conn, [Batch(denial), Batch(stray)])
    assert appended(good)[0].position == 2
    assert isinstance(bad, store.UnknownReference) and bad.pointer == "/data/event_id"


async def test_a_database_failure_stores_nothing_of_any_batch(conn: asyncpg.Connection) -> None:
    await fail_inserts(conn)
    with pytest.raises(asyncpg.UndefinedTableError):
        await store.append_many(conn, [Batch([joined("alice")]), Batch([joined("bob")])])
    assert await rows(conn) == []
    assert await conn.fetchval("SELECT count(*) FROM entities") == 0


# ---- the Appender ------------------------------------------------------------------------


@pytest.fixture
async def pool(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    created = await database.create_pool(pg_dsn, schema=schema, min_size=1, max_size=4)
    async with created.acquire() as setup:
        await database.migrate(setup)
    try:
        yield created
    finally:
        await created.close()


async def test_concurrent_requests_make_one_group(pool: asyncpg.Pool) -> None:
    appender = Appender(pool)
    appender.start()
    try:
        answers = await asyncio.gather(
            *(appender.append([joined(f"p-{i}", key=f"k-{i}")], f"key-{i % 3}") for i in range(20)),
            appender.append([joined("p-0", key="k-0")], "late"),  # the same claim again: a replay
            return_exceptions=True,
        )
    finally:
        await appender.stop()
    assert appender.groups == 1
    firsts = [a[0] for a in answers if isinstance(a, list)]
    assert len(firsts) == 21
    assert [a.position for a in firsts[:20]] == list(range(1, 21))
    assert firsts[20].replayed and firsts[20].event_id == firsts[0].event_id
    async with pool.acquire() as conn:
        stored = await rows(conn)
    assert [r["position"] for r in stored] == list(range(1, 21))
    assert [r["api_key_name"] for r in stored] == [f"key-{i % 3}" for i in range(20)]


async def test_groups_stop_at_the_cap_and_a_whole_request_is_never_split(pool: asyncpg.Pool) -> None:
    appender = Appender(pool)
    appender.start()
    big = GROUP_EVENTS * 3 // 5
    try:
        answers = await asyncio.gather(
            appender.append([joined(f"a-{i}") for i in range(big)]),
            appender.append([joined(f"b-{i}") for i in range(big)]),
            appender.append([joined("c")]),
            appender.append([joined(f"d-{i}") for i in range(GROUP_EVENTS)]),
        )
    finally:
        await appender.stop()
    # [a], [b, c] (b and c fit together), [d] (a full request alone).
    assert appender.groups == 3
    assert [len(a) for a in answers] == [big, big, 1, GROUP_EVENTS]
    positions = [x.position for a in answers for x in a]
    assert positions == list(range(1, 2 * big + 2 + GROUP_EVENTS))


async def test_a_cancelled_request_is_still_appended_once(pool: asyncpg.Pool) -> None:
    appender = Appender(pool)
    appender.start()
    try:
        waiting = asyncio.create_task(appender.append([joined("alice", key="k-alice")]))
        other = asyncio.create_task(appender.append([joined("bob", key="k-bob")]))
        await asyncio.sleep(0)  # both queued, the worker not yet run
        waiting.cancel()
        [bob] = await other
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The client never heard; its retry is a replay, not a second copy.
        [again] = await appender.append([joined("alice", key="k-alice")])
    finally:
        await appender.stop()
    assert bob.position == 2 and again.replayed and again.position == 1
    async with pool.acquire() as conn:
        assert [r["idempotency_key"] for r in await rows(conn)] == ["k-alice", "k-bob"]


async def test_a_database_failure_fails_every_request_of_the_group(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await fail_inserts(conn, times=1)
    appender = Appender(pool)
    appender.start()
    try:
        answers = await asyncio.gather(
            *(appender.append([joined(f"p-{i}")]) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(a, asyncpg.UndefinedTableError) for a in answers), answers
        async with pool.acquire() as conn:
            assert await rows(conn) == []
        # The worker goes on: the next group is stored.
        [after] = await appender.append([joined("after")])
    finally:
        await appender.stop()
    assert after.position == 1


async def test_a_value_the_database_refuses_fails_only_its_own_request(pool: asyncpg.Pool) -> None:
    # Validation keeps NUL characters out of events; this one is built past it, to stand
    # for any value PostgreSQL refuses that the checks before it miss.
    good = joined("alice")
    bad = msgspec.structs.replace(good, data=msgspec.structs.replace(good.data, person_name="Al\x00ice"))
    appender = Appender(pool)
    appender.start()
    try:
        answers = await asyncio.gather(
            appender.append([joined("before")]),
            appender.append([bad]),
            appender.append([joined("after")]),
            return_exceptions=True,
        )
    finally:
        await appender.stop()
    before, refused, after = answers
    assert isinstance(refused, asyncpg.DataError)
    assert isinstance(before, list) and isinstance(after, list)
    async with pool.acquire() as conn:
        assert [r["person"] for r in await rows(conn)] == ["before", "after"]


async def test_stop_appends_what_is_queued_then_refuses(pool: asyncpg.Pool) -> None:
    appender = Appender(pool)
    appender.start()
    queued = asyncio.create_task(appender.append([joined("alice")]))
    await asyncio.sleep(0)
    await appender.stop()
    [alice] = await queued
    assert alice.position == 1
    with pytest.raises(Closed):
        await appender.append([joined("bob")])


async def test_a_cancelled_worker_leaves_no_request_waiting(pool: asyncpg.Pool) -> None:
    appender = Appender(pool)
    appender.start()
    await asyncio.sleep(0)  # the worker waits for work
    waiting = [asyncio.create_task(appender.append([joined(f"p-{i}")])) for i in range(3)]
    await asyncio.sleep(0)  # queued, the worker woken but not yet run
    [worker] = [task for task in asyncio.all_tasks() if task.get_name() == "hiring-news appender"]
    worker.cancel()
    answers = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), timeout=10)
    assert all(isinstance(a, asyncio.CancelledError) for a in answers), answers
    with pytest.raises(Closed):
        await appender.append([joined("late")])
    await appender.stop()
