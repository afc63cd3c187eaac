"""Concurrent POST /events over HTTP: appended together, each request with its own answer.

The app runs in the test's own event loop (httpx's ASGI transport, the app's lifespan),
so fifty requests really are in flight at once and meet in the appender's groups.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar

from service import auth, database
from service.app import create_app
from tests.conftest import ADMIN, make_settings

JSON = {"content-type": "application/json"}


def joined(person: str, org: str = "msl", key: str | None = None, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "member.joined",
        "source": {"url": f"https://example.org/{person}", "published_at": "2025-07-08"},
        "data": {"person_id": person, "person_name": person.title(), "org_id": org, "on": "2025-07", **data},
    }
    if org == "msl":
        body["data"]["org_name"] = "MSL"
    if key is not None:
        body["idempotency_key"] = key
    return body


@asynccontextmanager
async def served(pg_dsn: str, schema: str) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    # Entered in the test itself, not in a fixture: the lifespan's cancel scope must be
    # left by the task that entered it.
    app = create_app(make_settings(pool_max=10), pg_dsn, schema=schema)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar types its ASGI callables more narrowly
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://hiring-news.test") as http,
    ):
        yield app, http


async def test_fifty_concurrent_posts_each_get_their_own_answer(pg_dsn: str, schema: str) -> None:
    async with served(pg_dsn, schema) as (app, http):
        await check_fifty_concurrent_posts(app, http, pg_dsn, schema)


async def check_fifty_concurrent_posts(
    app: Litestar, http: httpx.AsyncClient, pg_dsn: str, schema: str
) -> None:
    conn = await database.connect(pg_dsn, schema=schema)
    try:
        scraper = {"Authorization": f"Bearer {await auth.create(conn, 'scraper', 'write')}"}
        before = await http.post(
            "/events", content=json.dumps(joined("before", key="k-before")), headers={**JSON, **ADMIN}
        )
        assert before.status_code == 201

        lab = {
            "type": "org.added",
            "idempotency_key": "k-lab",
            "data": {"org_id": "new-lab", "name": "New lab", "kind": "lab"},
        }
        posts: list[tuple[str, dict[str, Any], dict[str, str]]] = [("lab", lab, ADMIN)]
        posts += [
            (f"good-{i}", joined(f"p-{i}", key=f"k-{i}"), ADMIN if i % 2 else scraper) for i in range(40)
        ]
        # The same claims again, concurrently: one of each pair is stored, the other replays it.
        posts += [(f"again-{i}", joined(f"p-{i}", key=f"k-{i}"), scraper) for i in range(5)]
        # One key, two different claims at once: one is stored, the other is a 409.
        posts += [
            ("race-a", joined("race-a", key="k-race"), ADMIN),
            ("race-b", joined("race-b", key="k-race"), ADMIN),
        ]
        posts += [
            ("conflict", joined("other", key="k-before"), ADMIN),  # the key was stored before: 409
            (
                "unknown",
                {**joined("ghost"), "data": {"person_id": "ghost", "org_id": "msl", "on": "2025"}},
                ADMIN,
            ),
            # Refers by id alone to the lab the first request introduces.
            ("uses-lab", {**joined("lab-member", "new-lab"), "idempotency_key": "k-lab-member"}, scraper),
        ]

        answers = await asyncio.gather(
            *(
                http.post("/events", content=json.dumps(body), headers={**JSON, **headers})
                for _, body, headers in posts
            )
        )
        by_name = dict(zip((name for name, _, _ in posts), answers, strict=True))

        # Requests in flight together were appended together, not one transaction each.
        assert app.state.appender.groups < len(posts) // 2

        for i in range(40):
            assert by_name[f"good-{i}"].status_code in {200, 201}, by_name[f"good-{i}"].text
        for i in range(5):
            pair = [by_name[f"good-{i}"].json()["events"][0], by_name[f"again-{i}"].json()["events"][0]]
            assert sorted(a["replayed"] for a in pair) == [False, True]
            assert pair[0]["event_id"] == pair[1]["event_id"] and pair[0]["position"] == pair[1]["position"]
            assert sorted(by_name[n].status_code for n in (f"good-{i}", f"again-{i}")) == [200, 201]
        race = sorted([by_name["race-a"].status_code, by_name["race-b"].status_code])
        assert race == [201, 409]
        for name, status, field in [
            ("conflict", 409, "$.idempotency_key"),
            ("unknown", 422, "$.data.person_id"),
        ]:
            answer = by_name[name]
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["errors"][0]["field"] == field
        assert by_name["lab"].status_code == 201 and by_name["uses-lab"].status_code == 201, by_name[
            "uses-lab"
        ].text

        stored = await conn.fetch(
            "SELECT position, idempotency_key, api_key_name, data->>'person_id' AS person FROM events ORDER BY position"
        )
    finally:
        await conn.close()

    # Gap-free, each claim once, nothing of a refused request.
    assert [r["position"] for r in stored] == list(range(1, len(stored) + 1))
    keys = Counter(r["idempotency_key"] for r in stored)
    expected = {"k-before", "k-lab", "k-race", "k-lab-member"} | {f"k-{i}" for i in range(40)}
    assert set(keys) == expected and set(keys.values()) == {1}
    people = {r["person"] for r in stored}
    assert "ghost" not in people and "other" not in people
    assert len(people & {"race-a", "race-b"}) == 1
    # Each event keeps the key name of its own request.
    names = {r["idempotency_key"]: r["api_key_name"] for r in stored}
    assert all(names[f"k-{i}"] == ("bootstrap" if i % 2 else "scraper") for i in range(40))
    assert names["k-lab-member"] == "scraper"
    # Every answer's position is the stored one.
    positions = {r["idempotency_key"]: r["position"] for r in stored}
    for i in range(40):
        assert by_name[f"good-{i}"].json()["events"][0]["position"] == positions[f"k-{i}"]

    # The projection saw every stored event, in the same transactions.
    roster = (await http.get("/orgs/msl/roster", params={"on": "2025-08-01"})).json()
    members = {m["person_id"] for m in roster["members"]}
    assert members == {f"p-{i}" for i in range(40)} | {"before"} | (people & {"race-a", "race-b"})
    assert roster["as_of"] == len(stored)
    lab_roster = (await http.get("/orgs/new-lab/roster", params={"on": "2025-08-01"})).json()
    assert [m["person_id"] for m in lab_roster["members"]] == ["lab-member"]
