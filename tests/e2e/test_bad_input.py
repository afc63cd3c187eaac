"""Garbage in: every bad request gets its documented 4xx problem, no stack trace, and stores nothing.

Each case counts the rows of every table of the test's schema (the log and the
projections) before and after, with one good event already stored, so "nothing stored"
is checked against a log that is not empty.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN, BOOTSTRAP_KEY

JSON = {"content-type": "application/json"}
SOURCE = {"url": "https://www.lemondeinformatique.fr/a", "published_at": "2025-07-08", "lang": "fr"}


def joined(
    person: str = "ruoming-pang", *, source: dict[str, Any] | None = None, **data: Any
) -> dict[str, Any]:
    return {
        "type": "member.joined",
        "source": source or SOURCE,
        "data": {
            "person_id": person,
            "person_name": "Ruoming Pang",
            "org_id": "msl",
            "org_name": "Meta Superintelligence Labs",
            "on": "2025-07",
            **data,
        },
    }


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def nested(depth: int, opening: bytes, closing: bytes, inner: bytes = b"1") -> bytes:
    return opening * depth + inner + closing * depth


TEN_MIB = 10 * 1024 * 1024

# (id, body, content type, status, the field the problem must name or None)
CASES: list[tuple[str, bytes, str, int, str | None]] = [
    ("truncated JSON", b'{"type": "member.joined", "data": {', "application/json", 400, None),
    ("not JSON at all", b"type=member.joined&person=pang", "application/json", 400, None),
    ("empty body", b"", "application/json", 400, None),
    ("NaN", encoded(joined()).replace(b'"2025-07"', b"NaN"), "application/json", 400, None),
    ("raw control character", encoded(joined()).replace(b"Pang", b"Pa\x01ng"), "application/json", 400, None),
    ("lone surrogate", encoded(joined()).replace(b"Pang", b"Pa\\ud800ng"), "application/json", 400, None),
    ("wrong content type", encoded(joined()), "text/plain", 415, None),
    ("form content type", encoded(joined()), "application/x-www-form-urlencoded", 415, None),
    ("invalid UTF-8", encoded(joined()).replace(b"Pang", b"Pa\xff\xfeng"), "application/json", 400, None),
    ("overlong UTF-8", encoded(joined()).replace(b"Pang", b"Pa\xc0\xafng"), "application/json", 400, None),
    ("10 MiB body", b"[" + b" " * TEN_MIB + b"]", "application/json", 413, None),
    ("just over 1 MiB", b"[" + b" " * (1024 * 1024) + b"]", "application/json", 413, None),
    ("deeply nested arrays", nested(100_000, b"[", b"]"), "application/json", 422, "$[0]"),
    ("deeply nested objects", nested(10_000, b'{"a":', b"}"), "application/json", 400, None),
    (
        "deeply nested inside an event",
        encoded(joined()).replace(b'"2025-07"', nested(10_000, b'{"value":', b"}", b'"2025"')),
        "application/json",
        422,
        "$.data.on.value",
    ),
    ("1001 events", encoded([joined(f"p{i}") for i in range(1001)]), "application/json", 413, None),
    ("empty batch", b"[]", "application/json", 422, "$"),
    ("null", b"null", "application/json", 422, "$"),
    ("a number", b"42", "application/json", 422, "$"),
    (
        "100k-character name",
        encoded(joined(person_name="x" * 100_000)),
        "application/json",
        422,
        "$.data.person_name",
    ),
    (
        "100k-character quote",
        encoded(joined(source={**SOURCE, "quote": "q" * 100_000})),
        "application/json",
        422,
        "$.source.quote",
    ),
    (
        "100k-character idempotency key",
        encoded({**joined(), "idempotency_key": "k" * 100_000}),
        "application/json",
        422,
        "$.idempotency_key",
    ),
    ("100k-character id", encoded(joined("a" * 100_000)), "application/json", 422, "$.data.person_id"),
    ("id with a quote", encoded(joined("o'brien")), "application/json", 422, "$.data.person_id"),
    (
        "id with SQL",
        encoded(joined("x'); DROP TABLE events; --")),
        "application/json",
        422,
        "$.data.person_id",
    ),
    ("org id with SQL", encoded(joined(org_id='msl" OR 1=1 --')), "application/json", 422, "$.data.org_id"),
    (
        "NUL in a name",
        encoded(joined(person_name="Ruoming\x00Pang")),
        "application/json",
        422,
        "$.data.person_name",
    ),
    ("NUL in an id", encoded(joined("ruoming\x00pang")), "application/json", 422, "$.data.person_id"),
    (
        "NUL in a quote",
        encoded(joined(source={**SOURCE, "quote": "a\x00b"})),
        "application/json",
        422,
        "$.source.quote",
    ),
    (
        "NUL in an idempotency key",
        encoded({**joined(), "idempotency_key": "key\x00"}),
        "application/json",
        422,
        "$.idempotency_key",
    ),
    ("NUL in a field name", encoded({**joined(), "x\x00": 1}), "application/json", 422, "$"),
    (
        "NUL in the second event of a batch",
        encoded([joined("a"), joined("b", person_name="B\x00")]),
        "application/json",
        422,
        "$[1].data.person_name",
    ),
    ("30 February", encoded(joined(on="2025-02-30")), "application/json", 422, "$.data.on"),
    ("month 13", encoded(joined(on="2025-13")), "application/json", 422, "$.data.on"),
    ("day 0", encoded(joined(on="2025-07-00")), "application/json", 422, "$.data.on"),
    ("not a date", encoded(joined(on="last week")), "application/json", 422, "$.data.on"),
    (
        "crossed bounds",
        encoded(joined(on={"earliest": "2025-07-09", "latest": "2025-07-01"})),
        "application/json",
        422,
        "$.data.on",
    ),
    ("far future", encoded(joined(on="2999-01")), "application/json", 422, "$.data.on"),
    ("year 9999", encoded(joined(on="9999-12-31")), "application/json", 422, "$.data.on"),
    ("before 1900", encoded(joined(on="1899-12-31")), "application/json", 422, "$.data.on"),
    ("year 0", encoded(joined(on="0000")), "application/json", 422, "$.data.on"),
    (
        "published before 1900",
        encoded(joined(source={**SOURCE, "published_at": "1850-01-01"})),
        "application/json",
        422,
        "$.source.published_at",
    ),
    (
        "published 30 February",
        encoded(joined(source={**SOURCE, "published_at": "2025-02-30"})),
        "application/json",
        422,
        "$.source.published_at",
    ),
    ("unknown event type", encoded({**joined(), "type": "member.hired"}), "application/json", 422, "$.type"),
    ("no event type", encoded({"data": joined()["data"]}), "application/json", 422, "$"),
    ("unknown field", encoded({**joined(), "salary": 1}), "application/json", 422, "$"),
    ("unknown data field", encoded(joined(salary=1)), "application/json", 422, "$.data"),
    (
        "unknown source field",
        encoded(joined(source={**SOURCE, "author": "x"})),
        "application/json",
        422,
        "$.source",
    ),
    ("wrong field type", encoded(joined(person_id=42)), "application/json", 422, "$.data.person_id"),
    (
        "duplicate idempotency keys in a batch",
        encoded([{**joined("a"), "idempotency_key": "k"}, {**joined("b"), "idempotency_key": "k"}]),
        "application/json",
        422,
        "$[1].idempotency_key",
    ),
    (
        "one bad event among good ones",
        encoded([joined("a"), joined("b"), joined("c", on="2025-02-30")]),
        "application/json",
        422,
        "$[2].data.on",
    ),
    (
        "unknown id without a name",
        encoded({"type": "member.left", "data": {"person_id": "nobody", "org_id": "msl", "on": "2025"}}),
        "application/json",
        422,
        "$.data.person_id",
    ),
    (
        "amount beyond any currency",
        encoded(
            {
                "type": "comp.reported",
                "data": {
                    "person_id": "ruoming-pang",
                    "org_id": "msl",
                    "basis": "total",
                    "amount": {"min": 10**30, "currency": "USD"},
                },
            }
        ),
        "application/json",
        422,
        "$.data.amount.min",
    ),
    (
        "claim on an unknown event",
        encoded({"type": "claim.denied", "data": {"event_id": "00000000-0000-0000-0000-000000000001"}}),
        "application/json",
        422,
        "$.data.event_id",
    ),
    (
        "url that is a script",
        encoded(joined(source={**SOURCE, "url": "javascript:alert(1)"})),
        "application/json",
        422,
        "$.source.url",
    ),
]


async def rows(conn: asyncpg.Connection) -> dict[str, int]:
    """Row counts of every table in the test's schema: the log and every projection."""
    schema = await conn.fetchval("SELECT current_schema()")
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    return {t["table_name"]: await conn.fetchval(f'SELECT count(*) FROM "{t["table_name"]}"') for t in tables}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text and 'File "' not in response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"].endswith(str(status))
    assert response.headers["x-content-type-options"] == "nosniff"
    return body


@pytest.fixture
async def seeded(client: AsyncTestClient, conn: asyncpg.Connection) -> dict[str, int]:  # type: ignore[type-arg]
    first = await client.post(
        "/events", content=encoded({**joined(), "idempotency_key": "k"}), headers={**JSON, **ADMIN}
    )
    assert first.status_code == 201, first.text
    # The counts below are settled once the projector has caught up with the seed (a read
    # waits for it only HIRING_NEWS_READ_WAIT, which a loaded machine may exceed).
    for _ in range(300):
        if (await client.get("/readyz")).json()["lag"] == 0:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/people")).json()["as_of"] == 1
    before = await rows(conn)
    assert before["events"] == 1 and before["membership_rows"] == 1
    return before


@pytest.mark.parametrize(
    ("body", "media", "status", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_body_is_refused_and_stores_nothing(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    seeded: dict[str, int],
    body: bytes,
    media: str,
    status: int,
    field: str | None,
) -> None:
    response = await client.post("/events", content=body, headers={"content-type": media, **ADMIN})
    problem = assert_problem(response, status)
    if field is not None:
        assert problem["errors"][0]["field"] == field, problem
    assert await rows(conn) == seeded


async def test_an_impossible_time_of_publication_is_refused(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    seeded: dict[str, int],
) -> None:
    body = encoded(joined(source={**SOURCE, "published_at": "2025-07-08T25:99:99+99:99"}))
    assert_problem(await client.post("/events", content=body, headers={**JSON, **ADMIN}), 422)
    assert await rows(conn) == seeded


async def test_the_same_key_for_other_content_is_409_and_stores_nothing(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    seeded: dict[str, int],
) -> None:
    other = encoded({**joined(on="2025-08"), "idempotency_key": "k"})
    problem = assert_problem(await client.post("/events", content=other, headers={**JSON, **ADMIN}), 409)
    assert problem["errors"][0]["field"] == "$.idempotency_key"
    assert await rows(conn) == seeded


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"X-API-Key": "' OR 1=1 --"}, 401),
        ({"Authorization": "Basic eDp5"}, 401),
    ],
    ids=["no key", "unknown key", "SQL as a key", "basic auth"],
)
async def test_writes_without_a_valid_key_store_nothing(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    seeded: dict[str, int],
    headers: dict[str, str],
    status: int,
) -> None:
    response = await client.post("/events", content=encoded(joined("someone")), headers={**JSON, **headers})
    assert_problem(response, status)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await rows(conn) == seeded


async def test_a_write_key_cannot_post_claims(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    seeded: dict[str, int],
) -> None:
    from service import auth

    key = await auth.create(conn, "scraper", "write")
    after_key = await rows(conn)
    stored = (await client.get("/events")).json()["events"][0]["event_id"]
    denial = encoded({"type": "claim.denied", "data": {"event_id": stored}})
    assert_problem(await client.post("/events", content=denial, headers={**JSON, "X-API-Key": key}), 403)
    assert await rows(conn) == after_key


async def test_sql_in_free_text_is_stored_verbatim(client: AsyncTestClient, conn: asyncpg.Connection) -> None:  # type: ignore[type-arg]
    """Text is data, never SQL: a name made of SQL is stored and read back as written."""
    name = "Robert'); DROP TABLE events; -- \" \\ ; SELECT pg_sleep(10)"
    created = await client.post(
        "/events", content=encoded(joined("bobby", person_name=name)), headers={**JSON, **ADMIN}
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["events"][0]["event_id"]
    assert (await client.get(f"/events/{event_id}")).json()["data"]["person_name"] == name
    assert (await client.get("/people/bobby/timeline")).json()["name"] == name
    assert (await rows(conn))["events"] == 1


READ_CASES = [
    ("/orgs/x'--/roster", 400),
    ("/orgs/msl%27%20OR%20%271%27%3D%271/roster", 400),
    ("/orgs/" + "a" * 101, 400),
    ("/orgs/msl/roster?on=2025-02-30", 400),
    ("/orgs/msl/roster?on=0000-01-01", 400),
    ("/orgs/msl/roster?on=%00", 400),
    ("/orgs/msl/roster?min_status=sure", 400),
    ("/orgs/msl/roster?include=everything", 400),
    ("/orgs/msl/roster?as_of=-1", 400),
    ("/orgs/msl/roster?as_of=1&known_at=2025-07-08T00:00:00Z", 400),
    ("/orgs/msl/roster?known_at=0001-01-01T00:00:00%2B14:00", 400),
    ("/orgs/msl/roster?known_at=yesterday", 400),
    ("/events?after=99999999999999999999", 400),
    ("/events?limit=1001", 400),
    ("/events?limit=0", 400),
    ("/events?type=member.joined%27--", 400),
    ("/events?type=%00", 400),
    ("/events/not-a-uuid", 404),
    ("/events/00000000-0000-0000-0000-000000000001", 404),
    ("/people/nobody/timeline", 404),
    ("/flows?from=msl", 400),
    ("/flows?from=msl&to=nowhere", 404),
    ("/flows?from=msl&to=msl&since=2025-13-01", 400),
    ("/nowhere", 404),
]


@pytest.mark.parametrize(("path", "status"), READ_CASES, ids=[c[0][:60] for c in READ_CASES])
async def test_bad_reads_are_problems(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    seeded: dict[str, int],
    path: str,
    status: int,
) -> None:
    assert_problem(await client.get(path), status)
    assert await rows(conn) == seeded


async def test_bootstrap_key_is_not_needed_to_read(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/events")).status_code == 200
    assert (await client.get("/events", headers={"X-API-Key": BOOTSTRAP_KEY})).status_code == 200
