"""The roster read on real PostgreSQL: one statement resolves the position, checks the
org and reads the rows, and the sources reach the answer as the fold wrote them; a read
says where it stands when the projector has not reached the position it asks for."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from service import events as ev
from service import reads, store
from tests.projecting import project

DAY = date(2025, 7, 10)


def event(type_: str, **data: Any) -> ev.Event:
    body = {
        "type": type_,
        "source": {"url": "https://example.org/a", "published_at": "2025-07-08"},
        "data": data,
    }
    return ev.decode(json.dumps(body).encode())[0]


async def history(conn: asyncpg.Connection) -> None:
    """Positions 1-2: Meta and a member; 3: its lab, which the log names only then; 4: a
    member of the lab; 5: an alias of hers, so her person row changes after position 4."""
    for batch in (
        [
            event("org.added", org_id="meta", name="Meta", kind="company"),
            event(
                "member.joined",
                person_id="alexandr-wang",
                person_name="Alexandr Wang",
                org_id="meta",
                on="2025-06",
            ),
        ],
        [event("org.added", org_id="msl", name="MSL", kind="lab", parent_id="meta")],
        [
            event(
                "member.joined",
                person_id="ruoming-pang",
                person_name="Ruoming Pang",
                org_id="msl",
                on="2025-07-01",
            )
        ],
        [event("person.alias_added", person_id="ruoming-pang", alias="Pang Ruoming")],
    ):
        await store.append(conn, batch)
    await project(conn)


def counting(conn: asyncpg.Connection) -> list[str]:
    """The statements the connection runs from now on (asyncpg reports each one soon after)."""
    statements: list[str] = []
    conn.add_query_logger(lambda record: statements.append(record.query))
    return statements


async def count(statements: list[str]) -> int:
    await asyncio.sleep(0)
    return len(statements)


async def roster(conn: asyncpg.Connection, org: str, as_of: int | None = None, **kw: Any) -> Any:
    found, stand = await reads.roster(
        conn,
        org,
        DAY,
        as_of,
        kw.pop("known_at", None),
        include_suborgs=kw.pop("suborgs", False),
        min_status="reported",
    )
    assert not stand.behind
    return msgspec.json.decode(msgspec.json.encode(found))


async def test_an_org_unknown_at_as_of_but_known_later_is_a_404_in_one_statement(
    conn: asyncpg.Connection,
) -> None:
    await history(conn)
    statements = counting(conn)
    with pytest.raises(reads.UnknownId, match="no org 'msl' in the log as of position 2"):
        await roster(conn, "msl", 2)
    assert await count(statements) == 1
    found = await roster(conn, "msl", 3)
    assert await count(statements) == 2
    assert (found["as_of"], found["members"]) == (3, [])
    with pytest.raises(reads.UnknownId, match="as of position 5"):
        await roster(conn, "deepmind")


async def test_as_of_is_capped_at_the_head_and_names_come_from_the_row_held_then(
    conn: asyncpg.Connection,
) -> None:
    await history(conn)
    now = await roster(conn, "msl", 99)
    assert now["as_of"] == 5
    assert [(e["person_id"], e["name"]) for e in now["members"]] == [("ruoming-pang", "Ruoming Pang")]
    # As of 4 her person row is the one the alias closed at 5.
    before = await roster(conn, "msl", 4)
    assert [(e["person_id"], e["name"]) for e in before["members"]] == [("ruoming-pang", "Ruoming Pang")]
    # The sources, passed through as stored, are the same JSON as the fold's SourceRef.
    [source] = before["members"][0]["sources"]
    assert source["position"] == 4
    assert set(source) == {
        "event_id",
        "position",
        "type",
        "status",
        "url",
        "outlet",
        "published_at",
        "lang",
        "quote",
    }


async def test_known_at_and_suborgs(conn: asyncpg.Connection) -> None:
    await history(conn)
    past = datetime(2000, 1, 1, tzinfo=UTC)
    with pytest.raises(reads.UnknownId, match="as of position 0"):
        await roster(conn, "meta", known_at=past)
    later = datetime.now(UTC) + timedelta(days=1)
    found = await roster(conn, "meta", known_at=later, suborgs=True)
    assert found["as_of"] == 5
    assert [e["person_id"] for e in found["members"]] == ["alexandr-wang", "ruoming-pang"]
    alone = await roster(conn, "meta", known_at=later)
    assert [e["person_id"] for e in alone["members"]] == ["alexandr-wang"]


async def test_a_timeline_is_one_statement_and_a_person_unknown_then_is_a_404(
    conn: asyncpg.Connection,
) -> None:
    await history(conn)
    statements = counting(conn)
    with pytest.raises(reads.UnknownId, match="no person 'ruoming-pang' in the log as of position 3"):
        await reads.timeline(conn, "ruoming-pang", 3)
    career, _ = await reads.timeline(conn, "ruoming-pang", None)
    found = msgspec.json.decode(msgspec.json.encode(career))
    assert await count(statements) == 2
    assert (found["name"], found["as_of"]) == ("Ruoming Pang", 5)
    [stint] = found["memberships"]
    assert (stint["org_id"], stint["start"]["value"], stint["end"]) == ("msl", "2025-07-01", None)
    assert [source["position"] for source in stint["sources"]] == [4]


async def test_a_read_beyond_the_projection_says_where_it_stands_and_answers_nothing(
    conn: asyncpg.Connection,
) -> None:
    await history(conn)
    [late] = await store.append(conn, [event("person.alias_added", person_id="alexandr-wang", alias="Wang")])
    found, stand = await reads.roster(conn, "meta", DAY, None, include_suborgs=False, min_status="reported")
    assert found is None
    assert (stand.asked, stand.position, stand.head, stand.behind, stand.lag) == (6, 5, 6, True, 1)
    # As of a position the projection has reached, it answers as usual.
    done, stand = await reads.roster(conn, "meta", DAY, 5, include_suborgs=False, min_status="reported")
    assert done is not None and (stand.asked, stand.position, stand.behind) == (5, 5, False)
    await project(conn)
    career, stand = await reads.timeline(conn, "alexandr-wang", None)
    assert career is not None and stand.position == late.position
