"""service.client against a real `hiring-news serve`: posting, reading, errors, and a
server killed with SIGKILL in the middle of the posts and started again."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from importlib import resources
from typing import Any

import asyncpg
import pytest

from service import client as hn
from tests.conftest import BOOTSTRAP_KEY
from tests.e2e.server import environment, free_port, ready, serving, start, stop

MSL = "meta-superintelligence-labs"


def article() -> list[bytes]:
    return resources.files("service.examples").joinpath("article.jsonl").read_bytes().splitlines()


def joined(person: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "member.joined",
        "source": {"url": "https://example.org/wire", "outlet": "Example Wire", "published_at": "2025-07-08"},
        "data": {
            "person_id": person,
            "person_name": person.replace("-", " ").title(),
            "org_id": "msl",
            "org_name": "MSL",
            "on": "2025-07",
            **data,
        },
    }


async def stored(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT idempotency_key) AS keys, "
            "coalesce(min(position), 0) AS low, coalesce(max(position), 0) AS high FROM events"
        )
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


def test_post_and_read_everything_back(fresh_database: str) -> None:
    with serving(environment(fresh_database)) as (base, _), hn.Client(base, BOOTSTRAP_KEY) as news:
        import json

        lines = [json.loads(line) for line in article()]
        first = news.post(lines)
        assert [a.position for a in first] == list(range(1, 29)) and not any(a.replayed for a in first)
        # Posting again stores nothing: every event is a replay of its stored self.
        again = news.post(lines)
        assert all(a.replayed for a in again) and [a.event_id for a in again] == [a.event_id for a in first]

        roster = news.roster(MSL, on="2025-07-10")
        assert roster.as_of == 28 and "ruoming-pang" in {m.person_id for m in roster.members}
        timeline = news.timeline("ruoming-pang")
        assert [m.org_id for m in timeline.memberships] == ["google", "apple-foundation-models", MSL]
        assert news.org(MSL).parent_id == "meta"
        assert [c.org_id for c in news.tree("meta", on="2025-07-10").children] == [MSL]
        assert news.flows("apple", "meta").count == 1
        state = news.state(on="2025-07-10")
        assert MSL in {o.org_id for o in state.orgs}
        assert len(news.orgs()) == 10 and len(news.people()) == 7
        log = news.events()
        assert [e.position for e in log] == list(range(1, 29))
        assert log[0].event().idempotency_key == "article-fr-2025-07:01"
        assert news.event(str(log[-1].event_id)).position == 28
        assert [e.type for e in news.events(after=10, types=["lead.appointed"])] == ["lead.appointed"] * 2


def test_lists_follow_their_pages_and_batches_their_limits(fresh_database: str) -> None:
    with serving(environment(fresh_database)) as (base, _), hn.Client(base, BOOTSTRAP_KEY) as news:
        people = [joined(f"p{i:04d}", org_id=f"o{i:04d}", org_name=f"Org {i}") for i in range(2100)]
        before = news.requests
        answers = news.post(people)
        assert len(answers) == 2100 and news.requests - before == 3  # 1000, 1000, 100
        assert [p.person_id for p in news.people()] == [f"p{i:04d}" for i in range(2100)]
        assert len(news.orgs(on="2025-08-01")) == 2100
        assert len(news.state(on="2025-08-01").orgs) == 2100
        assert len(news.events()) == 2100 and len(news.events(limit=1500)) == 1500


def test_a_4xx_is_a_typed_error_naming_the_field(fresh_database: str) -> None:
    with serving(environment(fresh_database)) as (base, _):
        with hn.Client(base, BOOTSTRAP_KEY) as news:
            unknown = joined("ada")
            del unknown["data"]["person_name"]
            with pytest.raises(hn.ProblemError) as raised:
                news.post(unknown)
            assert raised.value.status == 422
            assert [e.field for e in raised.value.errors] == ["$.data.person_id"]
            with pytest.raises(hn.ProblemError) as missing:
                news.roster("nobody")
            assert missing.value.status == 404
        with hn.Client(base, "not-a-key") as stranger, pytest.raises(hn.ProblemError) as refused:
            stranger.post(joined("ada"))
        assert refused.value.status == 401


def test_the_async_client_against_the_server(fresh_database: str) -> None:
    async def run(base: str) -> None:
        async with hn.AsyncClient(base, BOOTSTRAP_KEY) as news:
            answers = await asyncio.gather(*(news.post(joined(f"a{i}")) for i in range(20)))
            assert sorted(a.position for [a] in answers) == list(range(1, 21))
            roster = await news.roster("msl", on="2025-08-01")
            assert len(roster.members) == 20 and len(await news.events()) == 20

    with serving(environment(fresh_database)) as (base, _):
        asyncio.run(run(base))


def test_a_server_killed_mid_request_and_restarted_stores_every_event_once(fresh_database: str) -> None:
    """The client posts 600 events in batches of 20 while the server is killed with SIGKILL
    twice and started again on the same port: once wherever it is (a POST may have
    committed and lost its answer), once frozen (SIGSTOP) with a POST sent and unanswered.
    Every event is stored once, the log's positions are gap-free, and the client saw the
    request fail in flight, then the port refuse connections."""
    env = environment(fresh_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    events = [joined(f"k{i:03d}") for i in range(600)]
    failures: list[str] = []
    done: list[hn.Accepted] = []
    errors: list[BaseException] = []
    in_flight = threading.Event()

    def post_all() -> None:
        try:
            with hn.Client(
                base,
                BOOTSTRAP_KEY,
                max_events=20,
                retry=hn.Retry(attempts=200, base=0.1, cap=1.0, total=90),
                on_retry=lambda why, wait: failures.append(why),
            ) as news:
                for i in range(0, len(events), 20):
                    in_flight.set()
                    done.extend(news.post(events[i : i + 20]))
        except BaseException as error:
            errors.append(error)

    process = start(env, port)
    try:
        ready(base, process)
        writer = threading.Thread(target=post_all)
        writer.start()
        for frozen in (False, True):
            # Let some posts land, then kill the server while the writer is sending.
            landed = len(done) + 100
            deadline = time.monotonic() + 30
            while len(done) < landed and time.monotonic() < deadline and writer.is_alive():
                time.sleep(0.01)
            in_flight.wait(5)
            if frozen:
                process.send_signal(signal.SIGSTOP)
                time.sleep(0.5)  # the next POST is sent, and waits for its answer
            process.send_signal(signal.SIGKILL)
            process.wait()
            time.sleep(0.5)  # the writer meets a dead port for a while
            process = start(env, port)
            ready(base, process)
        writer.join(120)
        assert not writer.is_alive() and not errors, errors
    finally:
        stop(process)

    assert len(done) == 600
    # A request failed in flight (read error, or the connection dropped), then the port refused.
    assert any(why.startswith(("ReadError", "RemoteProtocolError")) for why in failures), failures
    assert any(why.startswith("ConnectError") for why in failures), failures
    counts = asyncio.run(stored(fresh_database))
    assert counts == {"n": 600, "keys": 600, "low": 1, "high": 600}
