"""POST and GET /events over HTTP (in-process Litestar, real PostgreSQL)."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from tests.bodies import assert_problem, joined, post
from tests.conftest import ADMIN


async def total(client: AsyncTestClient) -> int:  # type: ignore[type-arg]
    answer = await client.get("/events", params={"limit": 1000})
    return len(answer.json()["events"])


async def test_post_one_then_read_it_back(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    created = await post(client, {**joined(), "idempotency_key": "lmi-pang"})
    assert created.status_code == 201
    [accepted] = created.json()["events"]
    assert (
        accepted["position"] == 1
        and accepted["replayed"] is False
        and accepted["idempotency_key"] == "lmi-pang"
    )

    one = await client.get(f"/events/{accepted['event_id']}")
    assert one.status_code == 200
    stored = one.json()
    assert stored["data"]["person_id"] == "ruoming-pang" and stored["source"]["lang"] == "fr"
    assert stored["fact_key"] == "member.joined:ruoming-pang:msl:member"
    assert {"event_id", "position", "recorded_at", "fact_key", "schema_version", "type", "status"} <= set(
        stored
    )

    replay = await post(client, {**joined(), "idempotency_key": "lmi-pang"})
    assert replay.status_code == 200 and replay.json()["events"][0]["replayed"] is True
    assert replay.json()["events"][0]["event_id"] == accepted["event_id"]


async def test_paging_with_after_and_next(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await post(client, [joined(f"p{i}") for i in range(5)])
    first = (await client.get("/events", params={"limit": 2})).json()
    assert [e["position"] for e in first["events"]] == [1, 2] and first["next"] == 2
    second = (await client.get("/events", params={"after": first["next"], "limit": 2})).json()
    assert [e["position"] for e in second["events"]] == [3, 4]
    last = await client.get("/events", params={"after": 4, "limit": 2})
    assert [e["position"] for e in last.json()["events"]] == [5] and last.json()["next"] is None
    assert last.headers["etag"] == 'W/"5"'
    typed = (await client.get("/events", params={"type": "org.added,person.added"})).json()
    assert typed["events"] == []


async def test_malformed_json_is_400(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert_problem(await post(client, b'{"type": "member.joined"'), 400)
    assert await total(client) == 0


async def test_invalid_event_is_422_with_the_path(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    body = assert_problem(await post(client, [joined(), joined(on="2025-02-30")]), 422)
    assert body["errors"][0]["field"] == "$[1].data.on"
    assert body["errors"][0]["pointer"] == "/1/data/on"
    assert await total(client) == 0


async def test_unknown_id_without_name_is_422(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    left = {"type": "member.left", "data": {"person_id": "nobody", "org_id": "msl", "on": "2025"}}
    body = assert_problem(await post(client, [joined(), left]), 422)
    assert body["errors"][0]["pointer"] == "/1/data/person_id"
    assert "introduce it with a name" in body["detail"]
    assert await total(client) == 0


async def test_idempotency_conflict_is_409(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await post(client, {**joined(), "idempotency_key": "k"})
    body = assert_problem(await post(client, {**joined(on="2025-08"), "idempotency_key": "k"}), 409)
    assert body["errors"][0]["field"] == "$.idempotency_key"
    assert await total(client) == 1


async def test_duplicate_keys_in_one_batch_are_refused(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    batch = [{**joined("a"), "idempotency_key": "k"}, {**joined("b"), "idempotency_key": "k"}]
    assert assert_problem(await post(client, batch), 422)["errors"][0]["field"] == "$[1].idempotency_key"
    assert await total(client) == 0


async def test_too_many_events_or_bytes_is_413(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert_problem(await post(client, [joined(f"p{i}") for i in range(1001)]), 413)
    assert_problem(await post(client, b"[" + b" " * (1024 * 1024 + 1) + b"]"), 413)
    assert_problem(await post(client, b"[" + b" " * (3 * 1024 * 1024) + b"]"), 413)
    assert await total(client) == 0


async def test_empty_batch_is_422(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert_problem(await post(client, []), 422)


async def test_wrong_content_type_is_415(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.post(
        "/events", content=b"type=x", headers={**ADMIN, "content-type": "text/plain"}
    )
    assert_problem(response, 415)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"Authorization": "Basic x"}, 401),
    ],
)
async def test_writes_need_a_valid_key(client: AsyncTestClient, headers: dict[str, str], status: int) -> None:  # type: ignore[type-arg]
    assert_problem(await post(client, joined(), headers=headers), status)
    assert await total(client) == 0


async def test_x_api_key_header_works(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    from tests.conftest import BOOTSTRAP_KEY

    assert (await post(client, joined(), headers={"X-API-Key": BOOTSTRAP_KEY})).status_code == 201


async def test_unknown_event_id_is_404_and_bad_params_400(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert_problem(await client.get("/events/00000000-0000-0000-0000-000000000001"), 404)
    assert_problem(await client.get("/events", params={"after": -1}), 400)
    assert_problem(await client.get("/events", params={"limit": 0}), 400)
    assert_problem(await client.get("/events", params={"limit": "many"}), 400)
    assert_problem(await client.get("/events", params={"type": "member.hired"}), 400)
    assert_problem(await client.get("/nowhere"), 404)


async def test_health_and_readiness(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready" and (ready["head"], ready["projected"], ready["lag"]) == (0, 0, 0)
    assert ready["projector"] in {"starting", "active", "standby"}
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-request-id"]
