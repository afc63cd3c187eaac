"""The rough edges a newcomer hit over HTTP (issue 12, point 5), each pinned by a test."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service import auth
from service import events as ev
from tests.bodies import assert_problem, joined, post
from tests.conftest import ADMIN


async def write_key(pg_dsn: str, schema: str) -> str:
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        return await auth.create(conn, "scraper", "write")
    finally:
        await conn.close()


# ---- read parameters: the parameter and the reason ---------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "reason"),
    [
        ("/orgs/msl/roster?on=2025-02-30", "on", "'2025-02-30' is not a real day (2025-02 has 28 days)"),
        ("/orgs/msl/roster?on=2025-07", "on", "'2025-07' is not a day: give YYYY-MM-DD"),
        ("/orgs/msl/roster?on=0000-01-01", "on", "'0000-01-01' has no year 0"),
        ("/orgs?on=yesterday", "on", "'yesterday' is not a day: give YYYY-MM-DD"),
        ("/orgs/msl?on=2025-13-01", "on", "'2025-13-01' has no month 13"),
        ("/orgs/msl/tree?on=2025-02-29", "on", "'2025-02-29' is not a real day (2025-02 has 28 days)"),
        ("/state?on=2025-7-1", "on", "'2025-7-1' is not a day: give YYYY-MM-DD"),
        (
            "/flows?from=a&to=b&since=2025-02-30",
            "since",
            "'2025-02-30' is not a real day (2025-02 has 28 days)",
        ),
        ("/flows?from=a&to=b&until=2025", "until", "'2025' is not a day: give YYYY-MM-DD"),
    ],
)
async def test_a_bad_day_in_a_read_names_the_parameter_and_the_reason(
    client: AsyncTestClient,  # type: ignore[type-arg]
    path: str,
    field: str,
    reason: str,
) -> None:
    body = assert_problem(await client.get(path), 400)
    assert body["errors"] == [{"field": field, "pointer": "", "reason": reason}]
    assert reason in body["detail"] and field in body["detail"]


async def test_a_good_day_is_still_read(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await post(client, joined())).status_code == 201
    roster = await client.get("/orgs/msl/roster", params={"on": "2025-08-01"})
    assert roster.status_code == 200 and roster.json()["on"] == "2025-08-01"
    flows = await client.get("/flows", params={"from": "msl", "to": "msl", "since": "2025-01-01"})
    assert flows.status_code == 200


# ---- the key's scope before the body -----------------------------------------------------


async def test_a_write_key_posting_an_invalid_claim_is_refused_for_its_scope(
    pg_dsn: str,
    schema: str,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    key = {"X-API-Key": await write_key(pg_dsn, schema)}
    invalid = {"type": "claim.denied", "data": {"event_id": "not-a-uuid"}}
    assert_problem(await post(client, invalid, key), 403)
    # In a batch too, wherever the claim stands, and whatever else is wrong.
    batch = [joined(on="2025-02-30"), {"type": "claim.retracted", "data": {}}]
    assert_problem(await post(client, batch, key), 403)
    # An admin key still gets the 422 that says what is wrong.
    assert_problem(await post(client, invalid, ADMIN), 422)
    # And a write key posting an invalid event of its own scope gets the 422.
    assert_problem(await post(client, joined(on="2025-02-30"), key), 422)


# ---- one form of recorded_at; stored JSON written as the API writes it ------------------------


async def test_recorded_at_reads_the_same_in_the_post_answer_and_the_log(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    posted = await post(client, joined())
    [accepted] = posted.json()["events"]
    [stored] = (await client.get("/events")).json()["events"]
    assert accepted["recorded_at"] == stored["recorded_at"]
    assert accepted["recorded_at"].endswith("Z")
    one = (await client.get(f"/events/{accepted['event_id']}")).json()
    assert one["recorded_at"] == accepted["recorded_at"]


async def test_stored_source_and_data_come_back_as_the_api_writes_json(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    event = joined()
    event["data"] = dict(reversed(list(event["data"].items())))  # any key order in
    event["source"] = {"lang": "fr", "published_at": "2025-07-08", "url": "https://example.org/a"}
    assert (await post(client, event)).status_code == 201
    raw = (await client.get("/events")).content
    # The typed event's field order and msgspec's spacing, as every other answer.
    typed = ev.decoder.decode(json.dumps(event).encode())
    assert isinstance(typed, ev.MemberJoined)
    assert b'"source":' + msgspec.json.encode(typed.source) in raw
    assert b'"data":' + msgspec.json.encode(typed.data) in raw


# ---- /orgs, /people and /state are paged like /events --------------------------------------


async def test_orgs_people_and_state_are_paged_by_id(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    batch = [joined(f"p{i:02d}", org_id=f"o{i:02d}", org_name=f"Org {i}") for i in range(25)]
    assert (await post(client, batch)).status_code == 201

    async def walk(path: str, key: str, ident: str, **params: Any) -> list[str]:
        found: list[str] = []
        after: str | None = None
        while True:
            query = {**params, "limit": 10, **({} if after is None else {"after": after})}
            answer = await client.get(path, params=query)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert len(page[key]) <= 10
            found += [item[ident] for item in page[key]]
            if page["next"] is None:
                return found
            assert page["next"] == page[key][-1][ident]
            after = page["next"]

    expected_orgs = [f"o{i:02d}" for i in range(25)]
    assert await walk("/orgs", "orgs", "org_id", on="2025-08-01") == expected_orgs
    assert await walk("/people", "people", "person_id") == [f"p{i:02d}" for i in range(25)]
    assert await walk("/state", "orgs", "org_id", on="2025-08-01") == expected_orgs
    # The default page and the bounds.
    assert len((await client.get("/people")).json()["people"]) == 25
    assert_problem(await client.get("/people", params={"limit": 1001}), 400)
    assert_problem(await client.get("/orgs", params={"limit": 0}), 400)
    assert_problem(await client.get("/state", params={"after": "Not A Slug"}), 400)


# ---- `on` may be left out of member claims: undated, bounded by the publication ------------


@pytest.mark.parametrize("type_", ["member.joined", "member.left", "member.role_changed", "lead.appointed"])
def test_on_may_be_left_out_of_member_claims(type_: str) -> None:
    data: dict[str, Any] = {"person_id": "p", "org_id": "o"}
    if type_ == "member.role_changed":
        data["role"] = "lead"
    event = ev.decoder.decode(json.dumps({"type": type_, "data": data}).encode())
    assert not isinstance(event, list)
    assert getattr(event.data, "on") is None  # noqa: B009


async def test_an_undated_join_is_possible_up_to_the_day_its_source_was_published(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    event = joined()
    del event["data"]["on"]
    assert (await post(client, event)).status_code == 201
    before = (await client.get("/orgs/msl/roster", params={"on": "2020-01-01"})).json()
    assert before["members"] == [] and [p["person_id"] for p in before["possible"]] == ["ruoming-pang"]
    assert before["possible"][0]["start"] == {"value": None, "earliest": None, "latest": "2025-07-08"}
    after = (await client.get("/orgs/msl/roster", params={"on": "2025-07-08"})).json()
    assert [p["person_id"] for p in after["members"]] == ["ruoming-pang"]
    # Exactly as the same claim dated by words alone.
    worded = joined("nat-friedman")
    worded["data"]["on"] = {"text": "recently"}
    assert (await post(client, worded)).status_code == 201
    both = (await client.get("/orgs/msl/roster", params={"on": "2020-01-01"})).json()
    starts = {p["person_id"]: p["start"] for p in both["possible"]}
    assert starts["nat-friedman"] == starts["ruoming-pang"]


@pytest.mark.parametrize("value", ["null", "all", "SUBORGS"])
async def test_include_is_suborgs_or_nothing(client: AsyncTestClient, value: str) -> None:  # type: ignore[type-arg]
    body = assert_problem(await client.get("/orgs/msl/roster", params={"include": value}), 400)
    assert body["errors"] == [{"field": "include", "pointer": "", "reason": "one of: suborgs"}]
