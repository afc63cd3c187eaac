"""Reads from a real streaming standby (DATABASE_READ_URL), writes to its primary.

The module makes a private primary (initdb, pg_ctl) and a hot standby of it
(`pg_basebackup -R`, streaming through a slot), each on a free port, never the shared
server; each test has a database of its own on them and a real `hiring-news serve`
with DATABASE_URL on the primary and DATABASE_READ_URL on the standby. A standby is
held back for real by pausing its WAL replay (`pg_wal_replay_pause()`): the primary
commits and projects, the standby receives the WAL and applies none of it.

What DESIGN §5 asks, through a standby:
- a read without `as_of` reflects every write committed before it, whatever the
  standby's lag: it waits for the standby up to HIRING_NEWS_READ_WAIT, then the primary
  answers it;
- a read at an `as_of` (or `known_at`) the standby has not replayed waits for it, then
  is a 503 with Retry-After; it is never answered with older data under the newer
  position (checked against the same read answered by the primary alone);
- with several standbys behind one address (a round-robin proxy here, a Kubernetes
  Service in production), one held back, no answer names a position over the rows of
  a standby that has not replayed it.

The clusters do not depend on the database mode (DATABASE_URL or the embedded default):
these tests run the same in both. They skip only where the machine has no PostgreSQL
server binaries.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests import pgcluster
from tests.bodies import joined
from tests.conftest import ADMIN
from tests.e2e.server import environment, serving
from tests.faults import LingeringProxy, wait_until

NO_CLUSTER = pgcluster.unavailable()
pytestmark = pytest.mark.skipif(NO_CLUSTER is not None, reason=f"no private PostgreSQL cluster: {NO_CLUSTER}")

# Long enough for the primary's projector to have projected a write by the end of the
# wait on a busy machine (it is woken by NOTIFY: milliseconds when idle).
READ_WAIT = 2.0
Params = dict[str, str | int]
ON: Params = {"on": "2025-08-01"}


@dataclass(frozen=True)
class Replicated:
    primary: pgcluster.Cluster
    standby: pgcluster.Cluster


@dataclass(frozen=True)
class Database:
    """One test's database, on the primary and (replicated) on the standby."""

    name: str
    clusters: Replicated

    @property
    def primary(self) -> str:
        return self.clusters.primary.dsn.rsplit("/", 1)[0] + "/" + self.name

    @property
    def standby(self) -> str:
        return self.clusters.standby.dsn.rsplit("/", 1)[0] + "/" + self.name

    def on_primary(self, query: str) -> str:
        return self.clusters.primary.psql(query, database=self.name)

    def on_standby(self, query: str) -> str:
        return self.clusters.standby.psql(query, database=self.name)


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    with pgcluster.private_cluster() as primary, pgcluster.private_standby(primary) as standby:
        yield Replicated(primary, standby)


@pytest.fixture
def database(replicated: Replicated) -> Iterator[Database]:
    found = Database(f"hn_standby_{uuid.uuid4().hex[:12]}", replicated)
    replicated.primary.psql(f'CREATE DATABASE "{found.name}"')
    wait_until(
        lambda: (
            replicated.standby.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{found.name}'") == "1"
        ),
        30,
        "the new database on the standby",
    )
    try:
        yield found
    finally:
        # Whatever a test left paused, the next one finds the standby replaying.
        replicated.standby.psql("SELECT pg_wal_replay_resume()", check=False)
        replicated.primary.psql(f'DROP DATABASE IF EXISTS "{found.name}" WITH (FORCE)', check=False)


@contextmanager
def through_standby(database: Database) -> Iterator[str]:
    """`serve`: writes to the primary, reads from the standby."""
    env = environment(database.primary)
    env["DATABASE_READ_URL"] = database.standby
    env["HIRING_NEWS_READ_WAIT"] = str(READ_WAIT)
    with serving(env) as (base, _):
        yield base


@contextmanager
def replay_paused(standby: pgcluster.Cluster) -> Iterator[None]:
    """The standby receives the primary's WAL and replays none of it until the end."""
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        wait_until(
            lambda: standby.psql("SELECT pg_get_wal_replay_pause_state()") == "paused", 30, "replay paused"
        )
        yield
    finally:
        standby.psql("SELECT pg_wal_replay_resume()", check=False)


def post(base: str, body: dict[str, Any]) -> int:
    answer = httpx.post(f"{base}/events", json=body, headers=ADMIN, timeout=30)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["events"][0]["position"])


def projected(database: Database, *, standby: bool) -> int:
    """The projection's checkpoint as the primary or the standby has it."""
    query = "SELECT position FROM projection_checkpoint"
    return int((database.on_standby if standby else database.on_primary)(query))


def members(answer: httpx.Response) -> set[str]:
    return {m["person_id"] for m in answer.json()["members"]}


def test_reads_are_served_by_the_standby(database: Database) -> None:
    with through_standby(database) as base:
        # The read pool's connections (application_name hiring-news) are on the standby.
        on_standby = database.on_standby(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE application_name = 'hiring-news' AND datname = '{database.name}'"
        )
        assert int(on_standby) >= 1
        assert database.on_standby("SELECT pg_is_in_recovery()") == "t"
        first = post(base, joined("ada"))
        answer = httpx.get(f"{base}/orgs/msl/roster", params=ON, timeout=30)
        assert answer.status_code == 200 and answer.json()["as_of"] == first and members(answer) == {"ada"}

        with replay_paused(database.clusters.standby):
            second = post(base, joined("bob"))
            wait_until(lambda: projected(database, standby=False) >= second, 30, "projected on the primary")
            # The primary has projected `second`; only a reader on the standby can be behind it.
            behind = httpx.get(f"{base}/orgs/msl/roster", params={**ON, "as_of": second}, timeout=30)
            assert behind.status_code == 503, behind.text
            assert projected(database, standby=True) < second


def test_read_your_writes_whatever_the_standby_lag(database: Database) -> None:
    with through_standby(database) as base:
        post(base, joined("ada"))
        with replay_paused(database.clusters.standby):
            written = post(base, joined("bob", title="Researcher"))
            started = time.monotonic()
            roster = httpx.get(f"{base}/orgs/msl/roster", params=ON, timeout=30)
            waited = time.monotonic() - started
            # The standby never got there: the read waited for it, then the primary answered.
            assert projected(database, standby=True) < written
            assert waited >= READ_WAIT
            assert roster.status_code == 200, roster.text
            assert roster.json()["as_of"] >= written and members(roster) == {"ada", "bob"}
            assert "projection-lag" not in roster.headers
            # The other reads too: one statement (a career), a stand then rows (an org).
            timeline = httpx.get(f"{base}/people/bob/timeline", timeout=30)
            assert timeline.status_code == 200, timeline.text
            assert timeline.json()["as_of"] >= written
            assert [m["title"] for m in timeline.json()["memberships"]] == ["Researcher"]
            org = httpx.get(f"{base}/orgs/msl", params=ON, timeout=30)
            assert org.status_code == 200 and org.json()["as_of"] >= written, org.text
            people = httpx.get(f"{base}/people", timeout=30)
            assert people.status_code == 200, people.text
            assert {p["person_id"] for p in people.json()["people"]} == {"ada", "bob"}
            page = httpx.get(f"{base}/ui/orgs/msl", params=ON, timeout=30)
            assert page.status_code == 200 and "bob" in page.text
        # Replaying again, the standby answers alone.
        roster = httpx.get(f"{base}/orgs/msl/roster", params=ON, timeout=30)
        assert roster.status_code == 200 and members(roster) == {"ada", "bob"}


def test_an_as_of_the_standby_has_not_replayed_waits_or_is_a_503(database: Database) -> None:
    # The same reads answered by the primary alone: what the standby must agree with.
    with through_standby(database) as base, serving(environment(database.primary)) as (primary_only, _):
        first = post(base, joined("ada"))
        wait_until(lambda: projected(database, standby=True) >= first, 30, "replayed on the standby")
        with replay_paused(database.clusters.standby):
            second = post(base, joined("bob"))
            at_second: Params = {**ON, "as_of": second}
            expected = httpx.get(f"{primary_only}/orgs/msl/roster", params=at_second, timeout=30)
            assert expected.status_code == 200 and members(expected) == {"ada", "bob"}

            # A position the standby has: answered at once, as the primary answers it.
            at_first: Params = {**ON, "as_of": first}
            old = httpx.get(f"{base}/orgs/msl/roster", params=at_first, timeout=30)
            assert old.status_code == 200, old.text
            assert old.json() == httpx.get(f"{primary_only}/orgs/msl/roster", params=at_first).json()

            # One it has not: past the wait, a 503 with Retry-After, never the older roster.
            started = time.monotonic()
            for params in (at_second, {**ON, "known_at": "2100-01-01T00:00:00Z"}):
                behind = httpx.get(f"{base}/orgs/msl/roster", params=params, timeout=30)
                assert behind.status_code == 503, behind.text
                assert behind.headers["content-type"].startswith("application/problem+json")
                assert int(behind.headers["retry-after"]) >= 1
                assert f"position {second} is not projected yet" in behind.json()["detail"]
            assert time.monotonic() - started >= 2 * READ_WAIT
            behind = httpx.get(f"{base}/people/bob/timeline", params={"as_of": second}, timeout=30)
            assert behind.status_code == 503, behind.text

            # Replay resumed while a read waits: it answers exactly as the primary does.
            answers: list[httpx.Response] = []
            waiting = threading.Thread(
                target=lambda: answers.append(
                    httpx.get(f"{base}/orgs/msl/roster", params=at_second, timeout=30)
                )
            )
            waiting.start()
            time.sleep(READ_WAIT / 4)
            database.clusters.standby.psql("SELECT pg_wal_replay_resume()")
            waiting.join(30)
        assert len(answers) == 1 and answers[0].status_code == 200, answers
        assert answers[0].json() == expected.json()
        assert answers[0].headers["etag"] == f'W/"{second}"'


# ---- several standbys behind one address --------------------------------------------------------


def balancer(dsn: str, ports: list[int]) -> LingeringProxy:
    """A TCP proxy handing each new connection to the next of several servers in turn,
    as a Kubernetes Service does over a database's standbys (CloudNativePG's `-ro`): one
    pool's connections then reach different standbys, which replay at their own pace."""
    following = itertools.cycle(ports)
    return LingeringProxy(dsn, connect=lambda: asyncio.open_connection("127.0.0.1", next(following)))


def test_standbys_behind_a_balancer_never_answer_older_data(database: Database) -> None:
    """Two standbys behind one DATABASE_READ_URL, one of them held back: a read's position
    may be found on one standby and its rows read on the other. Every answer must still be
    the state at the position it names (or a 503), never the held-back standby's."""
    clusters = database.clusters
    with pgcluster.private_standby(clusters.primary) as second:
        read_url = f"postgresql://postgres@127.0.0.1:{clusters.standby.port}/{database.name}"
        proxy = balancer(read_url, [clusters.standby.port, second.port])
        try:
            env = environment(database.primary)
            env["DATABASE_READ_URL"] = proxy.dsn
            env["HIRING_NEWS_READ_WAIT"] = "0.5"
            env["HIRING_NEWS_POOL_MIN"] = env["HIRING_NEWS_POOL_MAX"] = "8"
            with serving(env) as (base, _):
                first = post(base, joined("ada"))
                wait_until(
                    lambda: (
                        projected(database, standby=True) >= first
                        and int(
                            second.psql("SELECT position FROM projection_checkpoint", database=database.name)
                        )
                        >= first
                    ),
                    30,
                    "replayed on both standbys",
                )
                with replay_paused(second):
                    written = post(base, joined("bob"))
                    wait_until(
                        lambda: projected(database, standby=True) >= written, 30, "replayed on one standby"
                    )

                    def read(n: int) -> httpx.Response:
                        params = {"as_of": written} if n % 2 else {}
                        return httpx.get(f"{base}/people", params=params, timeout=30)

                    # Side by side, so that the pool's connections to both standbys are in use.
                    with ThreadPoolExecutor(8) as pool:
                        answers = list(pool.map(read, range(48)))
        finally:
            proxy.close()
    statuses = {a.status_code for a in answers}
    assert statuses <= {200, 503}, [a.text for a in answers if a.status_code not in (200, 503)]
    for answer in answers:
        if answer.status_code == 200:
            body = answer.json()
            assert body["as_of"] >= written
            assert {p["person_id"] for p in body["people"]} == {"ada", "bob"}, body
