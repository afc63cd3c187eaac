"""What a read waits for, over HTTP (in-process Litestar, real PostgreSQL, the real projector).

A read without `as_of` reflects every event committed before it: it waits for the
projector, then answers at the head. With no projector to wait for, it answers at the
projection's position after HIRING_NEWS_READ_WAIT, with a Projection-Lag header; with
`as_of` or `known_at` beyond the projection, it answers 503 with Retry-After. /readyz and
/metrics say where the log and the projection stand.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from service import database
from service.app import create_app
from tests.conftest import make_settings
from tests.e2e.test_events_http import joined, post
from tests.projecting import project

WAIT = 0.5


@pytest.fixture
async def without_projector(pg_dsn: str, schema: str) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """An API replica (`serve --no-projector`) with nobody projecting, reads waiting 0.5 s."""
    app = create_app(make_settings(read_wait_seconds=WAIT), pg_dsn, schema=schema, projector=False)
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_a_read_waits_for_the_projector_and_reflects_the_write_before_it(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    for person in ("ada", "bob", "cy"):
        written = await post(client, joined(person))
        assert written.status_code == 201, written.text
        position = written.json()["events"][0]["position"]
        # Read-your-writes: no as_of, so the read asks for the head and waits for it.
        roster = await client.get("/orgs/msl/roster", params={"on": "2025-08-01"})
        assert roster.status_code == 200
        assert roster.json()["as_of"] == position and roster.headers["etag"] == f'W/"{position}"'
        assert person in {m["person_id"] for m in roster.json()["members"]}
        assert "projection-lag" not in roster.headers
    ready = (await client.get("/readyz")).json()
    assert (ready["head"], ready["projected"], ready["lag"], ready["projector"]) == (3, 3, 0, "active")


async def test_past_the_wait_a_read_answers_at_the_projection_with_its_lag(
    without_projector: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
) -> None:
    client = without_projector
    assert (await post(client, joined("ada"))).status_code == 201
    await project(conn)  # position 1 projected, by hand: this replica has no projector
    assert (await post(client, joined("bob"))).status_code == 201
    started = time.monotonic()
    roster = await client.get("/orgs/msl/roster", params={"on": "2025-08-01"})
    waited = time.monotonic() - started
    assert roster.status_code == 200
    assert WAIT <= waited < WAIT + 5
    # Answered as of the projection, which the body, the ETag and the header say.
    assert roster.json()["as_of"] == 1 and roster.headers["etag"] == 'W/"1"'
    assert roster.headers["projection-lag"] == "1"
    assert [m["person_id"] for m in roster.json()["members"]] == ["ada"]
    ready = (await client.get("/readyz")).json()
    assert (ready["head"], ready["projected"], ready["lag"], ready["projector"]) == (2, 1, 1, "off")
    metrics = (await client.get("/metrics")).text
    assert "hiring_news_log_head 2.0" in metrics
    assert "hiring_news_projection_position 1.0" in metrics
    assert "hiring_news_projection_lag 1.0" in metrics
    assert "hiring_news_projector_active 0.0" in metrics
    # Every read without as_of does the same, the multi-statement ones included.
    for path in ("/people", "/orgs", "/orgs/msl", "/orgs/msl/tree", "/people/ada/timeline", "/state"):
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["as_of"] == 1 and answer.headers["projection-lag"] == "1", path


@pytest.mark.parametrize("asked", [{"as_of": "2"}, {"known_at": "2100-01-01T00:00:00Z"}])
async def test_a_position_beyond_the_projection_is_a_503_with_retry_after(
    without_projector: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    asked: dict[str, str],
) -> None:
    client = without_projector
    assert (await post(client, joined("ada"))).status_code == 201
    await project(conn)
    assert (await post(client, joined("bob"))).status_code == 201
    for path in ("/orgs/msl/roster", "/people/bob/timeline", "/orgs/msl", "/people"):
        answer = await client.get(path, params=asked)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"] == "2"
        assert "position 2 is not projected yet (the projection is at 1)" in answer.json()["detail"]
    # Once projected, the same read answers exactly as of it.
    await project(conn)
    answer = await client.get("/orgs/msl/roster", params={**asked, "on": "2025-08-01"})
    assert answer.status_code == 200 and answer.json()["as_of"] == 2
    assert "projection-lag" not in answer.headers


async def test_a_waiting_read_is_woken_by_the_projector_not_by_its_timeout(
    without_projector: AsyncTestClient,  # type: ignore[type-arg]
    pg_dsn: str,
    schema: str,
) -> None:
    client = without_projector
    assert (await post(client, joined("ada"))).status_code == 201

    def project_soon() -> None:
        # Another thread, another loop: the test client holds this one while it waits.
        async def run() -> None:
            await asyncio.sleep(0.1)
            conn = await database.connect(pg_dsn, schema=schema)
            try:
                await project(conn)
            finally:
                await conn.close()

        asyncio.run(run())

    projecting = threading.Thread(target=project_soon)
    started = time.monotonic()
    projecting.start()
    try:
        roster = await client.get("/orgs/msl/roster", params={"on": "2025-08-01"})
    finally:
        projecting.join()
    assert roster.json()["as_of"] == 1 and "projection-lag" not in roster.headers
    assert time.monotonic() - started < WAIT


async def test_an_id_the_projection_has_not_reached_is_a_503_not_a_404(
    without_projector: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    client = without_projector
    assert (await post(client, joined("ada"))).status_code == 201
    roster = await client.get("/orgs/msl/roster")
    assert roster.status_code == 503 and roster.headers["retry-after"] == "2"
    # An id the log has never mentioned is a 404 as of the position asked, lag or not.
    nowhere = await client.get("/orgs/nowhere/roster")
    assert nowhere.status_code == 404 and "as of position 1" in nowhere.json()["detail"]
    for path in ("/orgs/msl", "/orgs/msl/tree", "/people/ada/timeline"):
        assert (await client.get(path)).status_code == 503, path
    assert (await client.get("/orgs/nowhere")).status_code == 404
