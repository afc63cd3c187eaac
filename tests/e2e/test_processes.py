"""Three `hiring-news serve` processes on one database, as a deployment behind a load
balancer runs them: every one appends and answers reads, exactly one runs the projector.

Thirty writer threads spread single events and batches over the three (each request to
the next process in turn, each retry too), each event with its own idempotency key. Then
the log, `GET /events` paged across the three, and their rosters for the same `as_of` are
compared; then the process running the projector is killed with SIGKILL while a second
wave writes, another takes over, and the projection it keeps equals a fresh rebuild.
The counts are printed (`pytest -s` or `-rP` shows them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import ADMIN
from tests.e2e.server import environment, free_port
from tests.faults import (
    COMPANY,
    ELECTION_LOCK,
    LABS,
    Ledger,
    Proc,
    Writers,
    cache,
    check_log,
    differences,
    lock_holders,
    readyz,
    rebuilt,
    serve,
    wait_projected,
    wait_until,
)

PROCESSES = 3
CLIENTS = 30
REQUESTS = 6  # per client and wave: 40 % single events, 60 % batches of 1 to 20
# A standby asks for the election lock every second (projector.ELECTION_SECONDS), and the
# database gives a killed process's lock up as soon as its connection drops: a takeover
# takes about a second. The bound leaves room for a loaded two-core machine.
TAKEOVER_BOUND_SECONDS = 15.0
PAGE = 250  # small enough that paging the log takes several pages on every process


def report(name: str, **counts: Any) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def start_all(env: dict[str, str], bases: list[str], logs: Path) -> list[Proc]:
    """`serve` on each base URL, started together (each takes seconds to import and
    migrate); every one that started is killed if another did not."""
    with concurrent.futures.ThreadPoolExecutor(len(bases)) as pool:
        starting = [
            pool.submit(serve, env, int(base.rsplit(":", 1)[1]), logs / f"serve-{i}.log")
            for i, base in enumerate(bases)
        ]
    started = [f.result() for f in starting if f.exception() is None]
    failed = [error for f in starting if (error := f.exception()) is not None]
    if failed:
        for proc in started:
            proc.kill()
        raise failed[0]
    return started


def roles(bases: list[str]) -> list[str]:
    """What each process's /readyz says of its part in the projector's election."""
    return [str(readyz(base)[1].get("projector")) for base in bases]


def one_active(bases: list[str]) -> bool:
    found = roles(bases)
    return found.count("active") == 1 and found.count("standby") == len(bases) - 1


async def election_holders(dsn: str) -> int:
    """Backends holding the projector's election lock, as the database sees them."""
    conn = await asyncpg.connect(dsn)
    try:
        return len(await lock_holders(conn, ELECTION_LOCK))
    finally:
        await conn.close()


def page_log(bases: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Every event `GET /events` gives, following `next`, each page from the next process;
    and how many pages it took."""
    events: list[dict[str, Any]] = []
    after = 0
    pages = 0
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=b, headers=ADMIN, timeout=30)) for b in bases]
        while True:
            answer = clients[pages % len(clients)].get("/events", params={"after": after, "limit": PAGE})
            pages += 1
            assert answer.status_code == 200, answer.text
            body = answer.json()
            events += body["events"]
            if body["next"] is None:
                return events, pages
            after = body["next"]


def check_pages(bases: list[str], ledger: Ledger, head: int) -> int:
    """The log paged across the processes: every position once, in order, each with the
    event its request was answered with. Returns the number of pages."""
    events, pages = page_log(bases)
    assert [e["position"] for e in events] == list(range(1, head + 1)), "not every position once, in order"
    answered = {
        e["position"]: (e["event_id"], e["idempotency_key"])
        for r in ledger.acknowledged()
        for e in r.answer or ()
    }
    assert {e["position"]: (e["event_id"], e["idempotency_key"]) for e in events} == answered
    return pages


def check_rosters(bases: list[str], head: int) -> int:
    """Each process gives the same roster, byte for byte, with the same ETag, for the same
    org, day and `as_of` (half-way and at the head). Returns how many members they showed."""
    members = 0
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=b, timeout=30)) for b in bases]
        for as_of in (head // 2, head):
            for org, include in ((COMPANY, "suborgs"), (LABS[0], None)):
                for on in ("2000-12-31", "2002-06-30"):
                    params: dict[str, Any] = {"on": on, "as_of": as_of}
                    if include:
                        params["include"] = include
                    answers = [c.get(f"/orgs/{org}/roster", params=params) for c in clients]
                    assert [a.status_code for a in answers] == [200] * len(bases), [a.text for a in answers]
                    assert {a.headers["etag"] for a in answers} == {f'W/"{as_of}"'}
                    assert len({a.content for a in answers}) == 1, f"rosters differ: {org} {params}"
                    members += len(answers[0].json()["members"])
    return members


def test_three_serve_processes_share_one_log_and_one_projector(fresh_database: str, tmp_path: Path) -> None:
    """Three `serve` processes on one database; 30 writer threads post 6 requests each
    (single events and batches of up to 20), spread over the three, retried with the same
    idempotency keys until acknowledged. Checked: exactly one process's /readyz says its
    projector is active (and one backend holds the election lock); the log holds every
    acknowledged event once, at the position it was answered with, and nothing else;
    `GET /events`, each page from the next process, gives every position once, in order;
    the three give the same roster, byte for byte, and the same ETag for the same `as_of`.

    Then a second wave of 30 writers starts and, once a third of it is acknowledged, the
    process whose projector is active is killed with SIGKILL; requests it held are retried
    on the others. Checked: another process's /readyz says active within 15 s (measured
    and printed); the log is still exact; the projection reaches the head; no row is open
    twice; the projection equals a fresh `hiring-news rebuild`, row for row.
    """
    env = environment(fresh_database)
    bases = [f"http://127.0.0.1:{free_port()}" for _ in range(PROCESSES)]
    ledger = Ledger()
    procs: list[Proc] = []
    waves: list[Writers] = []
    started = time.monotonic()
    try:
        procs += start_all(env, bases, tmp_path)
        wait_until(lambda: one_active(bases), 15, "one projector active, two standing by")
        assert asyncio.run(election_holders(fresh_database)) == 1
        marks = {"started_s": time.monotonic() - started}

        first = Writers(bases, CLIENTS, requests=REQUESTS, ledger=ledger, seed=1, seconds=60)
        waves.append(first)
        first.start()
        first.join(70)
        marks["first_wave_s"] = time.monotonic() - started
        assert not ledger.failures, ledger.failures
        log = asyncio.run(check_log(fresh_database, ledger.requests))
        assert log.acknowledged == len(ledger.requests) == CLIENTS * REQUESTS
        served = Counter(r.served_by for r in ledger.acknowledged())
        assert set(served) == set(bases), served
        assert one_active(bases), roles(bases)
        assert asyncio.run(election_holders(fresh_database)) == 1

        pages = check_pages(bases, ledger, log.events)
        asyncio.run(wait_projected(fresh_database, 60))
        members = check_rosters(bases, log.events)
        assert members > 0, "the rosters compared were all empty"
        first_wave = (log.events, len(ledger.requests))
        marks["checks_s"] = time.monotonic() - started

        # The kill, under load: the second wave keeps writing through it.
        second = Writers(
            bases, CLIENTS, requests=REQUESTS, ledger=ledger, seed=2, seconds=60, first_client=CLIENTS
        )
        waves.append(second)
        second.start()
        wanted = first_wave[1] + CLIENTS * REQUESTS // 3
        wait_until(
            lambda: ledger.acked_count() >= wanted or bool(ledger.failures),
            60,
            f"{wanted} requests acknowledged",
        )
        assert not ledger.failures, ledger.failures
        [victim] = [i for i, role in enumerate(roles(bases)) if role == "active"]
        killed_at = time.monotonic()
        procs[victim].kill()
        survivors = [b for i, b in enumerate(bases) if i != victim]
        wait_until(
            lambda: "active" in roles(survivors),
            TAKEOVER_BOUND_SECONDS,
            "a surviving process's projector active",
        )
        takeover = time.monotonic() - killed_at
        assert takeover < TAKEOVER_BOUND_SECONDS

        second.join(70)
        marks["second_wave_s"] = time.monotonic() - started
        assert not ledger.failures, ledger.failures
        log = asyncio.run(check_log(fresh_database, ledger.requests))
        assert log.acknowledged == len(ledger.requests) == 2 * CLIENTS * REQUESTS
        caught = asyncio.run(wait_projected(fresh_database, 60))
        assert one_active(survivors), roles(survivors)
        assert asyncio.run(election_holders(fresh_database)) == 1
        check_pages(survivors, ledger, log.events)
        check_rosters(survivors, log.events)
        live, twice = asyncio.run(cache(fresh_database))
        assert not twice, f"rows open twice: {twice}"
    finally:
        for wave in waves:
            wave.abort()
        for proc in procs:
            proc.stop()
    marks["stopped_s"] = time.monotonic() - started
    fresh = rebuilt(env, fresh_database)
    assert differences(live, fresh) == {}
    assert live == fresh
    report(
        "three serve processes",
        first_wave_events=first_wave[0],
        events=log.events,
        requests=len(ledger.requests),
        served_per_process=[served[b] for b in bases],
        pages=pages,
        roster_members_compared=members,
        takeover_s=round(takeover, 2),
        transport_errors=dict(ledger.transport_errors),
        replayed_events=ledger.replayed,
        statuses=dict(ledger.statuses),
        catch_up_s=round(caught, 2),
        **{k: round(v, 1) for k, v in marks.items()},
        seconds=round(time.monotonic() - started, 1),
    )
