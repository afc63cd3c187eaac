"""Faults, injected for real: processes killed with SIGKILL, PostgreSQL restarted, two
projectors at once. Each test's docstring says what it injects, how often, and what it
counts; the counts are printed too (`pytest -s` or `-rP` shows them).

Processes are real `hiring-news` processes (tests/faults.py `Proc`), each on the test's
own database; clients are threads posting with httpx (`Writers`), each event with its own
idempotency key, retried with the same body until acknowledged. What survives is checked
by SQL: the log (`check_log`), rows open twice (`open_twice`), and the cache against a
fresh `hiring-news rebuild`, row for row.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from service import database
from service.app import create_app
from service.projection import Projection, Superseded
from service.rebuild import rebuild
from service.sql import QUERIES as Q
from service.store import Conn
from tests import pgcluster
from tests.conftest import ADMIN, make_settings
from tests.e2e.server import environment, free_port
from tests.faults import (
    ELECTION_LOCK,
    LOG_LOCK,
    WRITE_LOCK,
    Kill,
    Ledger,
    LingeringProxy,
    Proc,
    Request,
    Writers,
    batches,
    beyond,
    cache,
    check_log,
    covers_once,
    differences,
    freeze_and_kill,
    load_history,
    lock_holders,
    logged_batches,
    open_twice,
    readyz,
    rebuilt,
    serve,
    wait_projected,
    wait_until,
)
from tests.projecting import snapshot


def report(name: str, **counts: Any) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def caught_up(base: str, head: int) -> bool:
    status, body = readyz(base)
    return status == 200 and body.get("head") == head and body.get("lag") == 0


# ---- kill -9 of serve under load ------------------------------------------------------------

SERVE_KILLS = 4
CLIENTS = 10
REQUESTS = 30


def test_kill_9_of_serve_under_load_loses_nothing_and_stores_nothing_twice(
    fresh_database: str, tmp_path: Path
) -> None:
    """Injected: SIGKILL of `hiring-news serve` (API and projector in one process) while 10
    clients post (30 requests each: 40 % single events, 60 % arrays of 1 to 20 events;
    hires, departures, moves, lead appointments, new teams), retrying with the same
    idempotency keys on connection errors; a quarter of the requests whose connection
    dropped after sending are abandoned instead, so that the log alone says whether they
    were stored. Each kill freezes the process (SIGSTOP) until the moment it aims at comes
    (for up to 2 s; then it kills anyway), and kills it there: the 1st and 3rd while a
    backend of its appender is idle inside an append's transaction, holding the log's lock
    (it rolls back, or commits if its COMMIT was already sent); the 2nd and 4th once the
    log holds events committed after the
    last position any client was answered with (whose retries must be replays). serve is
    started again at once on the same port.

    How often: 4 times in the test, once each fifth of the 300 requests is acknowledged.

    Counted (and checked): the events and requests stored; requests acknowledged,
    abandoned and stored whole, abandoned and absent; kills that landed inside an append
    (and, for those whose transaction had written, its fate by pg_xact_status: rolled
    back, or committed) and kills that landed after a commit with answers unsent;
    connection errors and replayed
    events the clients saw. Checked: positions 1..N, each key once,
    every acknowledged event stored at the position it was answered with, every request
    whole or absent; the projector catches up; no row is open twice; the cache equals a
    fresh `rebuild`, row for row.
    """
    env = environment(fresh_database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ledger = Ledger()
    procs: list[Proc] = []
    kills: list[Kill] = []
    started = time.monotonic()
    writers = Writers(base, CLIENTS, requests=REQUESTS, ledger=ledger, seed=1, abandon=0.25)
    try:
        procs.append(serve(env, port, tmp_path / "serve-0.log"))
        writers.start()
        total = CLIENTS * REQUESTS
        for k in range(1, SERVE_KILLS + 1):
            wait_until(
                lambda k=k: ledger.acked_count() >= total * k // (SERVE_KILLS + 1) or bool(ledger.failures),  # type: ignore[misc]
                60,
                f"{total * k // (SERVE_KILLS + 1)} requests acknowledged",
            )
            assert not ledger.failures, ledger.failures
            if k % 2:
                aim = freeze_and_kill(fresh_database, procs[-1], LOG_LOCK, seconds=2, seed=k)
            else:
                aim = freeze_and_kill(
                    fresh_database, procs[-1], None, answered=ledger.last_answered, seconds=2, seed=k
                )
            kills.append(asyncio.run(aim))
            procs.append(serve(env, port, tmp_path / f"serve-{k}.log"))
        writers.join(90)
        assert not ledger.failures, ledger.failures
        log = asyncio.run(check_log(fresh_database, ledger.requests))
        assert log.acknowledged + log.abandoned_stored + log.abandoned_absent == len(ledger.requests)
        caught = wait_until(lambda: caught_up(base, log.events), 60, "/readyz: lag 0 at the head")
        live, twice = asyncio.run(cache(fresh_database))
        assert not twice, f"rows open twice: {twice}"
    finally:
        writers.abort()
        for proc in procs:
            proc.stop()
    fresh = rebuilt(env, fresh_database)
    assert differences(live, fresh) == {}
    assert live == fresh
    if any(k.inside for k in kills[1::2]):
        # Committed events no client was answered for: their requests were retried (and
        # replayed) or abandoned (and are stored whole).
        assert ledger.replayed + log.abandoned_stored > 0
    report(
        "kill -9 serve",
        kills=len(kills),
        inside_append=sum(k.inside for k in kills[::2]),
        after_commit_unanswered=sum(k.inside for k in kills[1::2]),
        interrupted_appends=Counter(k.status or "nothing written" for k in kills[::2] if k.inside),
        events=log.events,
        requests=len(ledger.requests),
        acknowledged=log.acknowledged,
        abandoned_stored=log.abandoned_stored,
        abandoned_absent=log.abandoned_absent,
        transport_errors=dict(ledger.transport_errors),
        replayed_events=ledger.replayed,
        statuses=dict(ledger.statuses),
        catch_up_s=round(caught, 2),
        seconds=round(time.monotonic() - started, 1),
    )


# ---- kill -9 of the active projector mid-batch ------------------------------------------------

PROJECTOR_EVENTS = 6000
# A batch's last statements: a backend idle after one of them may have its COMMIT on the way.
BATCH_END = (Q["move_checkpoint"], Q["notify_projection"])
TAKEOVER_BOUND_SECONDS = 5.0


def _roles(procs: list[Proc], seconds: float) -> tuple[Proc, Proc]:
    """(active, standby) among two `project` processes, by what they logged."""
    wait_until(
        lambda: all(p.logged("projector active") or p.logged("projector standby") for p in procs),
        seconds,
        "both projectors logged their role",
    )
    active = [p for p in procs if p.logged("projector active")]
    assert len(active) == 1, [p.tail() for p in procs]
    [standby] = [p for p in procs if p is not active[0]]
    assert standby.logged("projector standby")
    return active[0], standby


async def _after_kill(dsn: str) -> tuple[int, dict[str, int]]:
    """The checkpoint once the killed batch is gone, and rows the cache holds beyond it."""
    conn = await asyncpg.connect(dsn)
    try:
        checkpoint = int(await conn.fetchval(Q["checkpoint"]))
        return checkpoint, await beyond(conn, checkpoint)
    finally:
        await conn.close()


async def _election_holders(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["pid"] for r in await lock_holders(conn, ELECTION_LOCK)]
    finally:
        await conn.close()


def test_kill_9_of_the_active_projector_mid_batch(fresh_database: str, tmp_path: Path) -> None:
    """Injected: SIGKILL of the active `hiring-news project` process while its backend is
    idle inside a batch's transaction, holding the projection's write lock, with rows
    written and statements still to send before its COMMIT (SIGSTOP first, until it is, so
    the batch cannot commit before the kill).

    How often: twice. First the active one of two projectors started together, once it
    has committed a batch of a 6000-event generated history (loaded beforehand with no
    projector); the standby must take over. Then that one, now the only projector, once it
    has committed a batch of its own; a new `project` is started in its place.

    Counted (and checked): for each kill, the checkpoint committed before it, which it
    still is afterwards, with no row of the cache opened or closed beyond it, and the
    killed transaction aborted (pg_xact_status); the seconds the standby took to hold
    the election lock and to log "projector active" (bound: 5 s); where the restarted
    projector's first batch began (the checkpoint). Then: every batch the three committed,
    from their logs, takes every position exactly once; no row is open twice; the cache
    equals a fresh `rebuild`.
    """
    head = asyncio.run(load_history(fresh_database, PROJECTOR_EVENTS, seed=7))
    assert head == PROJECTOR_EVENTS
    env = {**environment(fresh_database), "HIRING_NEWS_LOG_LEVEL": "debug"}
    procs = [Proc(["project"], env, tmp_path / f"project-{name}.log") for name in "ab"]
    try:
        active, standby = _roles(procs, 30)

        first = asyncio.run(
            freeze_and_kill(
                fresh_database,
                active,
                WRITE_LOCK,
                seconds=20,
                want_xid=True,
                before=BATCH_END,
                at_least=1,
                seed=1,
            )
        )
        assert first.inside, "the kill did not land inside a batch"
        assert first.status == "aborted", first
        checkpoint, stray = asyncio.run(_after_kill(fresh_database))
        assert checkpoint == first.checkpoint, "the killed batch moved the checkpoint"
        assert not stray, f"rows beyond the checkpoint {checkpoint}: {stray}"
        assert 0 < checkpoint < head

        wait_until(
            lambda: bool(asyncio.run(_election_holders(fresh_database))), TAKEOVER_BOUND_SECONDS, "takeover"
        )
        holds_lock = time.monotonic() - first.killed_at
        standby.wait_logged("projector active", TAKEOVER_BOUND_SECONDS)
        takeover = time.monotonic() - first.killed_at
        assert takeover < TAKEOVER_BOUND_SECONDS

        second = asyncio.run(
            freeze_and_kill(
                fresh_database,
                standby,
                WRITE_LOCK,
                seconds=20,
                want_xid=True,
                before=BATCH_END,
                at_least=checkpoint + 1,
                seed=2,
            )
        )
        assert second.inside and second.status == "aborted", second
        resumed_at, stray = asyncio.run(_after_kill(fresh_database))
        assert resumed_at == second.checkpoint and not stray, (resumed_at, stray)
        assert checkpoint < resumed_at < head, "nothing left for the restart to do"

        procs.append(Proc(["project"], env, tmp_path / "project-c.log"))
        restarted = procs[-1]
        restarted.wait_logged("projector active", 30)
        asyncio.run(wait_projected(fresh_database, 60))
        spans = logged_batches(procs, head)
        [begun] = batches(restarted)[:1]
        assert begun[0] == resumed_at + 1, "the restarted projector did not resume from the checkpoint"
        assert covers_once(spans, head), spans
        live, twice = asyncio.run(cache(fresh_database))
        assert not twice, twice
    finally:
        for proc in procs:
            proc.stop()
    fresh = rebuilt(env, fresh_database)
    assert differences(live, fresh) == {}
    assert live == fresh
    report(
        "kill -9 projector",
        events=head,
        first_kill_checkpoint=first.checkpoint,
        second_kill_checkpoint=second.checkpoint,
        freeze_tries=(first.tries, second.tries),
        standby_holds_lock_s=round(holds_lock, 2),
        standby_active_s=round(takeover, 2),
        batches=len(spans),
    )


# ---- PostgreSQL restarted under load ------------------------------------------------------------

OUTAGE_SECONDS = 2.0


class Probe:
    """Polls /readyz every 0.1 s in a thread: (when, status, body) of each answer."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.seen: list[tuple[float, int, dict[str, Any]]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readyz probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            status, body = readyz(self.base)
            self.seen.append((time.monotonic(), status, body))
            time.sleep(0.1)

    def since(self, moment: float) -> list[tuple[float, int, dict[str, Any]]]:
        return [s for s in list(self.seen) if s[0] >= moment]

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)


# The test needs the machine's PostgreSQL binaries, not a server: it runs the same in both
# database modes.
NO_CLUSTER = pgcluster.unavailable()


@pytest.mark.skipif(NO_CLUSTER is not None, reason=f"no private PostgreSQL cluster: {NO_CLUSTER}")
def test_postgresql_restarted_under_load(tmp_path: Path) -> None:
    """Injected: PostgreSQL itself stopped (`pg_ctl stop -m fast`: every session is
    terminated, open transactions roll back) and started again 2 s later, on a private
    cluster this test makes (initdb, never the shared server), while 6 clients post to one
    `serve` without pause and a probe polls /readyz every 0.1 s.

    How often: once, after 60 requests were acknowledged; serve is never restarted.

    Counted (and checked): every status the clients got (only 201, 200 and 503 problems
    with Retry-After; no 500, no connection error, no answer slower than the 10 s client
    timeout); the 503s; the seconds /readyz took to go red after the stop and green after
    the start, by itself; that the projector is back ("active") with lag 0 after new
    appends; replays (requests committed whose answer was lost). Checked on the log:
    every acknowledged event once, at its position, gap-free, no request in part.
    """
    ledger = Ledger()
    with pgcluster.private_cluster() as cluster:
        env = {**environment(cluster.dsn), "HIRING_NEWS_LOG_LEVEL": "info"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = serve(env, port, tmp_path / "serve.log")
        probe = Probe(base)
        writers = Writers(base, 6, requests=10_000, ledger=ledger, seed=3, pause=0.01, seconds=120)
        try:
            writers.start()
            wait_until(lambda: ledger.acked_count() >= 60 or bool(ledger.failures), 30, "60 acknowledged")
            assert not ledger.failures, ledger.failures

            stopped_at = time.monotonic()
            cluster.stop("fast")
            red = wait_until(
                lambda: any(s == 503 for _, s, _ in probe.since(stopped_at)), 15, "/readyz 503 while down"
            )
            wait_until(lambda: any(t >= stopped_at for t in ledger.unavailable), 15, "a POST answered 503")
            time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - stopped_at), 0))
            acked_in_outage = ledger.acked_count()
            started_at = time.monotonic()
            cluster.start()
            green = wait_until(
                lambda: any(s == 200 for _, s, _ in probe.since(started_at)),
                30,
                "/readyz 200 after the start",
            )
            wait_until(
                lambda: ledger.acked_count() >= acked_in_outage + 60 or bool(ledger.failures),
                30,
                "60 more acknowledged after the restart",
            )
            writers.stop()
            writers.join(60)
            assert not ledger.failures, ledger.failures

            # The projector reconnected: it is active again and catches up with new appends.
            last = {
                "type": "org.added",
                "idempotency_key": "last",
                "data": {"org_id": "last", "name": "Last", "kind": "company", "on": "2025"},
            }
            answer = httpx.post(f"{base}/events", json=last, headers=ADMIN, timeout=10)
            assert answer.status_code == 201, answer.text
            ledger.requests.append(Request(-1, 0, last, ["last"], {}, [], 1, answer.json()["events"]))
            head = answer.json()["events"][0]["position"]
            wait_until(
                lambda: caught_up(base, head) and readyz(base)[1].get("projector") == "active",
                30,
                "/readyz: projector active, lag 0",
            )
            assert proc.alive(), "serve died"
            down = [body.get("projector") for _, s, body in probe.since(stopped_at) if s == 503]
        finally:
            writers.abort()
            probe.stop()
            proc.stop()
        log = asyncio.run(check_log(cluster.dsn, ledger.requests))
        assert log.events == head
    assert set(ledger.statuses) <= {200, 201, 503}, ledger.statuses
    assert ledger.statuses[503] >= 1
    assert not ledger.transport_errors, ledger.transport_errors
    report(
        "postgresql restart",
        statuses=dict(ledger.statuses),
        requests=len(ledger.requests),
        events=log.events,
        replayed_events=ledger.replayed,
        readyz_red_s=round(red, 2),
        readyz_green_s=round(green, 2),
        projector_while_down=sorted(set(map(str, down))),
    )


# ---- two projectors at once ------------------------------------------------------------------

TWO_PROJECTORS_EVENTS = 3000


def test_two_projectors_started_at_once_one_works_rows_written_once(
    fresh_database: str, tmp_path: Path
) -> None:
    """Injected: two `hiring-news project` processes started at the same moment on a log of
    3000 pending events (generated history, loaded with no projector).

    How often: once.

    Counted (and checked): which logged "projector active" (exactly one) and "projector
    standby" (the other, which never becomes active and commits no batch while the first
    lives); the holders of the election lock (one backend); the batches committed, which
    take every position exactly once; no row is open twice; the cache equals a fresh
    `rebuild`.
    """
    head = asyncio.run(load_history(fresh_database, TWO_PROJECTORS_EVENTS, seed=11))
    env = {**environment(fresh_database), "HIRING_NEWS_LOG_LEVEL": "debug"}
    procs = [Proc(["project"], env, tmp_path / f"project-{name}.log") for name in "ab"]
    try:
        active, standby = _roles(procs, 30)
        holders = asyncio.run(_election_holders(fresh_database))
        assert len(holders) == 1, holders
        caught = asyncio.run(wait_projected(fresh_database, 60))
        assert not standby.logged("projector active") and not standby.logged("projected")
        spans = logged_batches([active], head)
        assert covers_once(spans, head), spans
        live, twice = asyncio.run(cache(fresh_database))
        assert not twice, twice
    finally:
        for proc in procs:
            proc.stop()
    fresh = rebuilt(env, fresh_database)
    assert differences(live, fresh) == {}
    assert live == fresh
    report("two projectors", events=head, batches=len(spans), catch_up_s=round(caught, 2))


HISTORY_EVENTS = 1500


class WithoutWriteLock:
    """A connection on which the projection's write lock is a no-op: two projectors that
    both believe they won the election, with nothing between them but the checkpoint's
    compare and set."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if query == Q["projection_write_lock"]:
            return "SELECT 1"
        return await self._conn.execute(query, *args, **kwargs)


@pytest.mark.parametrize("write_lock", [True, False], ids=["write-lock", "compare-and-set-alone"])
async def test_two_projections_stepping_at_once_never_apply_an_event_twice(
    conn: asyncpg.Connection, pg_dsn: str, schema: str, write_lock: bool
) -> None:
    """Injected: two `Projection`s stepping concurrently on two connections on one schema,
    bypassing the election (batches of 40 and 55 events, over a 1500-event generated
    history); in the second case the projection's write lock is skipped as well, so only
    the checkpoint's compare and set stands between them.

    How often: every batch of both, until the projection has caught up.

    Counted (and checked): the batches each committed (the two together take every
    position exactly once); the batches refused (Superseded, the fold's claims table
    refusing a claim twice, or a deadlock the server
    broke: each rolled back whole); no row open twice; the cache equals a `rebuild`.
    """
    head = await load_history(pg_dsn, HISTORY_EVENTS, seed=5, schema=schema)
    other = await database.connect(pg_dsn, schema=schema)
    for connection in (conn, other):
        # Without the write lock, the two may lock rows in opposite orders; the server
        # breaks such a deadlock after this long (1 s by default).
        await connection.execute("SET deadlock_timeout = '50ms'")
    committed: list[tuple[int, int, str]] = []
    refused: list[str] = []

    async def run(name: str, connection: asyncpg.Connection, projection: Projection) -> None:
        target: Any = connection if write_lock else WithoutWriteLock(connection)
        on: Conn = target
        while True:
            try:
                stats = await projection.step(on)
            except (
                Superseded,
                asyncpg.exceptions.DeadlockDetectedError,
                # The second copy of a batch's new claims, refused by the fold's own table.
                asyncpg.exceptions.UniqueViolationError,
            ) as error:
                refused.append(type(error).__name__)
                continue
            if not stats.events:
                if int(await connection.fetchval(Q["checkpoint"])) >= head:
                    return
                continue
            committed.append((stats.position - stats.events + 1, stats.position, name))
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(
            asyncio.gather(run("a", conn, Projection(batch=40)), run("b", other, Projection(batch=55))), 120
        )
    finally:
        await other.close()
    assert covers_once(sorted((a, b) for a, b, _ in committed), head), committed
    if write_lock:
        # They take turns at the lock; each finds the checkpoint the other left.
        assert {name for _, _, name in committed} == {"a", "b"}, "one projection did all the work"
    assert not await open_twice(conn)
    live = await snapshot(conn)
    await rebuild(pg_dsn, schema=schema)
    fresh = await snapshot(conn)
    assert differences(live, fresh) == {}
    assert live == fresh
    if not write_lock:
        assert refused, "the two never collided"
    report(
        f"two projections ({'write lock' if write_lock else 'compare-and-set alone'})",
        events=head,
        batches={n: sum(1 for *_, m in committed if m == n) for n in "ab"},
        refused={r: refused.count(r) for r in set(refused)},
    )


# ---- a connection lost inside an append ---------------------------------------------------------


async def test_a_connection_lost_inside_an_append_is_a_503_not_a_500(pg_dsn: str, schema: str) -> None:
    """Injected: the server ends the append's own connection inside its transaction (a
    trigger on the log calls pg_terminate_backend on its backend), as a restart or an
    operator does to a busy connection.

    How often: once, then the trigger is dropped and the same request is posted again.

    Checked: the answer is a 503 problem with Retry-After, not a 500 (asyncpg reports the
    lost connection as an InterfaceError when the transaction block exits: the restart
    test first met it), nothing of it is stored, and the retry is stored once.
    """
    app = create_app(make_settings(), pg_dsn, schema=schema, projector=False)
    async with AsyncTestClient(app=app) as client:
        admin = await asyncpg.connect(pg_dsn)
        try:
            await admin.execute(
                f"""CREATE FUNCTION {schema}.drop_connection() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
                    CREATE TRIGGER drop_connection BEFORE INSERT ON {schema}.events
                    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.drop_connection()"""
            )
            body = {
                "type": "org.added",
                "idempotency_key": "lost-connection",
                "data": {"org_id": "acme", "name": "Acme", "kind": "company", "on": "2025"},
            }
            lost = await client.post("/events", json=body, headers=ADMIN)
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"].startswith("application/problem+json")
            assert lost.headers["retry-after"] == "2"
            assert await admin.fetchval(f"SELECT count(*) FROM {schema}.events") == 0

            await admin.execute(f"DROP TRIGGER drop_connection ON {schema}.events")
            retried = await client.post("/events", json=body, headers=ADMIN)
            assert retried.status_code == 201, retried.text
            assert await admin.fetchval(f"SELECT count(*) FROM {schema}.events") == 1
        finally:
            await admin.close()


async def _ready(client: AsyncTestClient, seconds: float) -> dict[str, Any]:  # type: ignore[type-arg]
    """/readyz once the projector is active and has caught up (the last answer otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        body: dict[str, Any] = (await client.get("/readyz")).json()
        if (body.get("projector") == "active" and body.get("lag") == 0) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_sessions_the_server_ended_are_503s_and_the_projector_takes_up_again(
    pg_dsn: str, schema: str
) -> None:
    """Injected: every session of one process (its pool's, its projector's, its projection
    watch's) ended the way the server ends them, with the FATAL admin_shutdown message, by
    a proxy that closes the sockets only 3 s later. The process meanwhile uses sessions
    the server is finished with but asyncpg has not seen close: the moment a restart
    opens between its FATAL and the EOF, which the restart test met about one run in four.

    How often: once.

    Checked: a POST meanwhile is a 503 problem with Retry-After, not a 500; once the
    sockets close, its retry (same key) is stored once; the projector, idle on its ended
    session when it came, is active again and catches up (lag 0), rather than stopping
    for good while /readyz still calls it active.
    """
    proxy = LingeringProxy(pg_dsn)
    try:
        app = create_app(make_settings(), proxy.dsn, schema=schema)
        async with AsyncTestClient(app=app) as client:
            body = {
                "type": "org.added",
                "idempotency_key": "after-the-end",
                "data": {"org_id": "acme", "name": "Acme", "kind": "company", "on": "2025"},
            }
            first = {**body, "idempotency_key": "before-the-end"}
            assert (await client.post("/events", json=first, headers=ADMIN)).status_code == 201
            assert (await _ready(client, 10)).get("lag") == 0

            assert proxy.end_sessions(linger=3.0) >= 3  # pool, projector, watch
            lost = await client.post("/events", json=body, headers=ADMIN)
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"].startswith("application/problem+json")
            assert lost.headers["retry-after"] == "2"

            statuses = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                retry = await client.post("/events", json=body, headers=ADMIN)
                statuses.append(retry.status_code)
                if retry.status_code in (200, 201):
                    break
                await asyncio.sleep(0.2)
            assert set(statuses) <= {201, 503} and statuses[-1] == 201, statuses
            ready = await _ready(client, 15)
            assert ready.get("projector") == "active" and ready.get("lag") == 0, ready
            assert ready.get("head") == 2
    finally:
        proxy.close()
    report("sessions ended", retries=len(statuses), statuses=statuses)
