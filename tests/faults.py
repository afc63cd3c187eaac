"""What the fault tests share: real processes, writers that retry, kills that land inside a
transaction, and the checks that tell what a fault did to the log and the cache.

- `Proc`: one `hiring-news` process (serve, project) with its stderr in a file of JSON
  lines, always stopped.
- `Plan` and `Writers`: client threads posting single events and batches, each event with
  its own idempotency key, retried with the same body on connection errors and 503s
  until acknowledged, to one process or spread over several; `Ledger` records every
  request, every answer and every status.
- `freeze_and_kill`: SIGSTOP a process until one of its backends sits inside a
  transaction holding a given lock (so the transaction cannot commit), then SIGKILL it,
  and check by `pg_xact_status` that PostgreSQL rolled that transaction back.
- The checks, by SQL on the test's database: `check_log` (positions 1..N, each key once,
  each request all or nothing), `open_twice`, `wait_projected`, `rebuilt_equals`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import msgspec

# The cache's checks are shared with the soak (bench/checks.py); the tests know them from here.
from bench.checks import ROWS
from bench.checks import cache as cache
from bench.checks import differences as differences
from bench.checks import open_twice as open_twice
from bench.history import History, bind
from service import database, importing, sql
from service.sql import QUERIES as Q
from tests.conftest import ADMIN
from tests.e2e.server import CLI, cli

T = TypeVar("T")

# ---- processes -----------------------------------------------------------------------------


class Proc:
    """One `hiring-news` process, its stderr (JSON log lines) in a file of its own."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [*CLI, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines logged so far (anything else, a traceback say, is skipped)."""
        found = []
        for line in self.log.read_bytes().splitlines():
            try:
                decoded = json.loads(line)
            except ValueError:
                continue
            if isinstance(decoded, dict):
                found.append(decoded)
        return found

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    def wait_logged(self, event: str, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.logged(event)
            if found:
                return found[0]
            if not self.alive():
                raise AssertionError(f"{self.args} exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args} did not log {event!r} in {seconds} s:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no handler runs, no lock is given back but by the server seeing the
        connections drop."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._stderr.close()

    def stop(self) -> int:
        """SIGTERM, as an orchestrator would; SIGKILL after 30 s."""
        if self.alive():
            # A process left frozen by freeze_and_kill would never handle the SIGTERM.
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._stderr.close()
        return int(self.process.returncode)


def serve(env: dict[str, str], port: int, log: Path, *, seconds: float = 60) -> Proc:
    """`hiring-news serve` on this port, once /readyz answers 200."""
    proc = Proc(["serve", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    try:
        while True:
            if not proc.alive():
                raise AssertionError(f"serve exited ({proc.process.returncode}):\n{proc.tail()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve was not ready in {seconds} s:\n{proc.tail()}")
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        raise


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    """The readiness answer (status, body), or (0, {}) when the process does not answer."""
    try:
        answer = httpx.get(f"{base}/readyz", timeout=5)
    except httpx.HTTPError:
        return 0, {}
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll until `check` holds; returns the seconds it took, or fails saying what was awaited."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


# ---- writers -------------------------------------------------------------------------------

SOURCE: Final = {"url": "https://example.org/faults", "outlet": "Fault Wire", "published_at": "2025-07-08"}
COMPANY: Final = "acme"
LABS: Final = ("acme-lab-0", "acme-lab-1", "acme-lab-2", "acme-lab-3")


@dataclass(slots=True)
class Request:
    """One POST, its events' keys, and what the client saw of it."""

    client: int
    number: int
    body: dict[str, Any] | list[dict[str, Any]]
    keys: list[str]
    # What the client believes once this request is acknowledged: who is where, which orgs exist.
    where: dict[str, str]
    orgs: list[str]
    attempts: int = 0
    answer: list[dict[str, Any]] | None = None  # the acknowledged events
    served_by: str | None = None  # the base URL of the process that acknowledged it
    abandoned: bool = False  # given up after an error that left its fate unknown


class Plan:
    """What one client posts, deterministic by seed: hires, departures, moves, lead
    appointments and new teams in four labs every client shares, with partial dates
    of every precision. Every id an event names is introduced by a name in it, or known
    from an acknowledged request, so nothing is refused whatever the kills did."""

    def __init__(self, client: int, seed: int) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.day = date(2000, 1, 1) + timedelta(days=11 * client)
        self.where: dict[str, str] = {}
        self.orgs: list[str] = list(LABS)
        self.number = 0
        self._people = 0
        self._teams = 0

    def first(self) -> Request:
        """Every client introduces the company and its labs (several claims of one fact)."""
        events = [self._org(COMPANY, "Acme", "company", None)]
        events += [self._org(lab, f"Acme Lab {i}", "lab", COMPANY) for i, lab in enumerate(LABS)]
        return self._request(events, dict(self.where), list(self.orgs))

    def next(self) -> Request:
        if self.number == 0:
            return self.first()
        where, orgs = dict(self.where), list(self.orgs)
        single = self.rng.random() < 0.4
        events = [self._event(where, orgs) for _ in range(1 if single else self.rng.randint(1, 20))]
        return self._request(events[0] if single else events, where, orgs)

    def acknowledged(self, request: Request) -> None:
        self.where, self.orgs = request.where, request.orgs

    def _request(
        self, body: dict[str, Any] | list[dict[str, Any]], where: dict[str, str], orgs: list[str]
    ) -> Request:
        events = body if isinstance(body, list) else [body]
        keys = [f"c{self.client}-r{self.number}-e{i}" for i in range(len(events))]
        for event, key in zip(events, keys, strict=True):
            event["idempotency_key"] = key
        request = Request(self.client, self.number, body, keys, where, orgs)
        self.number += 1
        return request

    def _on(self) -> str:
        self.day += timedelta(days=self.rng.randint(3, 40))
        return self.rng.choice([self.day.isoformat(), self.day.isoformat()[:7], self.day.isoformat()[:4]])

    def _org(self, org_id: str, name: str, kind: str, parent: str | None) -> dict[str, Any]:
        data = {"org_id": org_id, "name": name, "kind": kind, "on": "1999"}
        if parent is not None:
            data["parent_id"] = parent
        return {"type": "org.added", "source": SOURCE, "data": data}

    def _event(self, where: dict[str, str], orgs: list[str]) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choices(["hire", "leave", "move", "lead", "team"], [45, 20, 15, 10, 10])[0]
        if kind != "hire" and kind != "team" and not where:
            kind = "hire"
        if kind == "hire":
            person = f"c{self.client}-p{self._people}"
            self._people += 1
            org = rng.choice(orgs)
            where[person] = org
            data: dict[str, Any] = {"person_id": person, "person_name": f"Person {person}", "org_id": org}
            if rng.random() < 0.15:
                data["role"] = "lead"
            return {"type": "member.joined", "source": SOURCE, "data": {**data, "on": self._on()}}
        if kind == "team":
            team = f"c{self.client}-t{self._teams}"
            self._teams += 1
            orgs.append(team)
            event = self._org(team, f"Team {team}", "team", rng.choice(LABS))
            event["data"]["on"] = self._on()
            return event
        person = rng.choice(sorted(where))
        org = where[person]
        if kind == "leave":
            del where[person]
            data = {"person_id": person, "org_id": org, "on": self._on()}
            if rng.random() < 0.3:
                data["to_org_id"] = rng.choice(orgs)
            return {"type": "member.left", "source": SOURCE, "data": data}
        if kind == "move":
            target = rng.choice(orgs)
            where[person] = target
            data = {"person_id": person, "org_id": target, "from_org_id": org, "on": self._on()}
            return {"type": "member.joined", "source": SOURCE, "data": data}
        return {
            "type": "lead.appointed",
            "source": SOURCE,
            "data": {"person_id": person, "org_id": org, "on": self._on()},
        }


@dataclass
class Ledger:
    """Every request the writers made, and what they saw; shared by the writer threads."""

    requests: list[Request] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    unavailable: list[float] = field(default_factory=list)  # when each 503 came
    replayed: int = 0  # events acknowledged as replays of an attempt whose answer was lost
    failures: list[str] = field(default_factory=list)  # anything the test must fail on
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.answer is not None]

    def acked_count(self) -> int:
        return len(self.acknowledged())

    def last_answered(self) -> int:
        """The highest position any client was answered with."""
        return max((e["position"] for r in self.acknowledged() for e in r.answer or ()), default=0)


class Writers:
    """Client threads, each posting its plan's requests one after the other.

    Given several base URLs (processes on one database), each client spreads its
    requests over them in turn, and a retry goes to the next one, as a load balancer
    would send it: the idempotency keys make a retry elsewhere a replay, never a copy.
    Clients are numbered from `first_client`, so that a second set of writers on the same
    log uses keys of its own. A request is retried, with the same body, after a connection error and after a 503
    (which must be a problem document with Retry-After) until it is acknowledged (201 or
    200). After an error that leaves its fate unknown (the connection dropped once the
    request was sent), it is abandoned instead with probability `abandon`: whether it was
    stored is then for the log to say, and it must say all or nothing. Any other status,
    or a timeout (`timeout` seconds: a hang), is a failure.
    """

    def __init__(
        self,
        base: str | Sequence[str],
        clients: int,
        *,
        requests: int,
        ledger: Ledger,
        seed: int,
        abandon: float = 0.0,
        pause: float = 0.0,
        timeout: float = 10.0,
        seconds: float = 90.0,
        first_client: int = 0,
    ) -> None:
        self.bases = [base] if isinstance(base, str) else list(base)
        self.ledger = ledger
        self.requests = requests
        self.abandon = abandon
        self.pause = pause
        self.timeout = timeout
        self.deadline = time.monotonic() + seconds
        self.stopping = threading.Event()
        self.aborted = threading.Event()
        self.plans = [Plan(c, seed * 1000 + c) for c in range(first_client, first_client + clients)]
        self.threads = [
            threading.Thread(target=self._run, args=(plan,), name=f"writer-{plan.client}", daemon=True)
            for plan in self.plans
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Ask every client to stop once its current request is acknowledged (or abandoned)."""
        self.stopping.set()

    def abort(self) -> None:
        """Stop every client at once, acknowledged or not (a test failing: its server may
        be gone, and its port another test's)."""
        self.aborted.set()
        self.stopping.set()

    def join(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"writers still running after {seconds} s: {alive}"

    def _fail(self, message: str) -> None:
        with self.ledger.lock:
            self.ledger.failures.append(message)
        self.stopping.set()

    def _run(self, plan: Plan) -> None:
        rng = random.Random(plan.client)
        with contextlib.ExitStack() as stack:
            clients = [
                stack.enter_context(httpx.Client(base_url=base, timeout=self.timeout, headers=ADMIN))
                for base in self.bases
            ]
            while plan.number < self.requests and not (self.stopping.is_set() and plan.number > 0):
                request = plan.next()
                with self.ledger.lock:
                    self.ledger.requests.append(request)
                try:
                    if self._send(clients, request, rng):
                        plan.acknowledged(request)
                except Exception as error:  # a bug of the test itself: say so
                    self._fail(f"client {plan.client}: {error!r}")
                    return
                if request.answer is None and not request.abandoned:
                    return  # failed: _send said why
                if self.pause:
                    time.sleep(self.pause)

    def _send(self, clients: list[httpx.Client], request: Request, rng: random.Random) -> bool:
        """Post until acknowledged (True), abandoned or failed (False)."""
        while True:
            if self.aborted.is_set():
                return False
            if time.monotonic() > self.deadline:
                self._fail(f"request {request.client}/{request.number} not acknowledged before the deadline")
                return False
            # Each client starts at its own process and goes round; so does each retry.
            client = clients[(request.client + request.number + request.attempts) % len(clients)]
            request.attempts += 1
            try:
                answer = client.post("/events", json=request.body)
            except httpx.TimeoutException as error:
                self._fail(
                    f"request {request.client}/{request.number}: no answer in {self.timeout} s ({error!r})"
                )
                return False
            except httpx.TransportError as error:
                with self.ledger.lock:
                    self.ledger.transport_errors[type(error).__name__] += 1
                sent = not isinstance(error, httpx.ConnectError)
                if sent and request.number > 0 and rng.random() < self.abandon:
                    request.abandoned = True
                    return False
                time.sleep(0.05)
                continue
            with self.ledger.lock:
                self.ledger.statuses[answer.status_code] += 1
            if answer.status_code in (200, 201):
                events: list[dict[str, Any]] = answer.json()["events"]
                if [e["idempotency_key"] for e in events] != request.keys:
                    self._fail(
                        f"request {request.client}/{request.number}: answered for other keys: {events}"
                    )
                    return False
                with self.ledger.lock:
                    request.answer = events
                    request.served_by = str(client.base_url).rstrip("/")
                    self.ledger.replayed += sum(1 for e in events if e["replayed"])
                return True
            if answer.status_code == 503:
                problem = answer.headers.get("content-type", "").startswith("application/problem+json")
                if not problem or "retry-after" not in answer.headers:
                    self._fail(
                        f"a 503 without a problem document and Retry-After: {answer.headers} {answer.text}"
                    )
                    return False
                with self.ledger.lock:
                    self.ledger.unavailable.append(time.monotonic())
                # Sooner than Retry-After asks: the test wants to see the recovery early.
                time.sleep(0.1)
                continue
            self._fail(f"request {request.client}/{request.number}: {answer.status_code} {answer.text[:500]}")
            return False


# ---- kills that land inside a transaction ---------------------------------------------------


def _advisory_key(query: str) -> tuple[int, int, int]:
    """(classid, objid, objsubid) of the advisory lock a query takes, as pg_locks shows it.
    A two-int key (the projector's, whose second half is the schema's hash) has objid 0
    here: any schema."""
    found = re.search(r"advisory_(?:xact_)?lock\((\d+)\s*(,)?", query)
    assert found is not None, query
    key = int(found.group(1))
    if found.group(2):
        return key, 0, 2
    return key >> 32, key & 0xFFFFFFFF, 1


# The append's lock on the log, the projector's election lock (per schema, held for the
# session) and its write lock (per batch): read from the very queries that take them.
LOG_LOCK: Final = _advisory_key(sql.migration("append_group"))
ELECTION_LOCK: Final = _advisory_key(Q["projector_election"])
WRITE_LOCK: Final = _advisory_key(Q["projection_write_lock"])

_HOLDERS: Final = """
SELECT a.pid, a.state, a.backend_xid::text AS xid, a.xact_start IS NOT NULL AS in_transaction, a.query
FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = $1::bigint AND ($2::bigint = 0 OR l.objid::bigint = $2::bigint)
  AND l.objsubid = $3::int
"""


async def lock_holders(conn: asyncpg.Connection, lock: tuple[int, int, int]) -> list[asyncpg.Record]:
    """The backends of this database holding an advisory lock."""
    return list(await conn.fetch(_HOLDERS, *lock))


async def xact_status(conn: asyncpg.Connection, xid: int) -> str:
    """pg_xact_status of a 32-bit transaction id from pg_stat_activity (made 64-bit with
    the current epoch)."""
    current = int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"))
    epoch = current >> 32
    if xid > current & 0xFFFFFFFF:
        epoch -= 1
    return str(await conn.fetchval("SELECT pg_xact_status($1::text::xid8)", str((epoch << 32) | xid)))


@dataclass
class Kill:
    """What a kill interrupted: whether a backend of the process was idle inside a
    transaction holding the lock asked for (so it could not commit), that transaction's
    id if it had written anything, and its fate."""

    inside: bool
    tries: int
    checkpoint: int  # the projection's checkpoint, as committed, while the process was frozen
    xid: int | None = None
    status: str | None = None  # pg_xact_status of xid, once the backend is gone
    killed_at: float = 0.0


async def freeze_and_kill(
    dsn: str,
    proc: Proc,
    lock: tuple[int, int, int] | None,
    *,
    seconds: float = 3.0,
    want_xid: bool = False,
    before: tuple[str, ...] = (),
    at_least: int = 0,
    answered: Callable[[], int] | None = None,
    seed: int = 0,
) -> Kill:
    """SIGKILL `proc` at a chosen moment: while one of its backends holds `lock` inside an
    open transaction, or (with `answered`, and `lock` None) once the log holds events that
    committed after the last position any client was answered with.

    The process is frozen (SIGSTOP) and the server asked: a backend idle in transaction,
    holding the lock, waits for a client that cannot answer, so that transaction cannot
    commit before the SIGKILL lands, unless its COMMIT was sent just before the freeze and
    is not read yet: with `before`, only a backend whose last statement is none of these
    counts (the client sends one statement at a time, so after any other one its COMMIT
    cannot be on its way). A frozen process sends no more answers, so committed events
    past `answered()` stay unanswered (but for answers already on the wire). If
    the moment has not come, the process runs on for a random few milliseconds and is
    asked again, for up to `seconds`; then it is killed whatever it is doing (`inside`
    says which). With `want_xid`, only a transaction that has written something counts
    (its fate can then be asked); with `at_least`, only once the projection's checkpoint
    has reached that position. Afterwards: waits for the backend to go, and reads what
    became of the transaction.
    """
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + seconds
        tries = 0
        inside = False
        chosen: asyncpg.Record | None = None
        checkpoint = 0
        try:
            while True:
                tries += 1
                os.kill(proc.pid, signal.SIGSTOP)
                # A statement under way when the process froze runs to its end: look again
                # for a moment before deciding.
                for _ in range(4):
                    checkpoint = await _checkpoint(conn)
                    if lock is None:
                        assert answered is not None
                        inside = int(await conn.fetchval(Q["head_position"])) > answered()
                        if inside:
                            # Answers already on the wire reach their clients meanwhile;
                            # the frozen process sends no more.
                            await asyncio.sleep(0.02)
                            inside = int(await conn.fetchval(Q["head_position"])) > answered()
                    else:
                        candidates = [
                            r
                            for r in await lock_holders(conn, lock)
                            if r["state"] == "idle in transaction"
                            and (r["xid"] or not want_xid)
                            and not any(r["query"].strip() == q.strip() for q in before)
                        ]
                        inside = bool(candidates) and checkpoint >= at_least
                        chosen = candidates[0] if inside else None
                    if inside:
                        break
                    await asyncio.sleep(0.002)
                if inside or time.monotonic() > deadline:
                    break
                os.kill(proc.pid, signal.SIGCONT)
                await asyncio.sleep(rng.uniform(0.0, 0.03))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            proc.kill()
        kill = Kill(inside, tries, checkpoint, killed_at=killed_at)
        if chosen is None:
            return kill
        # The server notices the dropped connection and rolls the transaction back.
        for _ in range(200):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", chosen["pid"]):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"backend {chosen['pid']} outlived its killed client by 10 s")
        if chosen["xid"]:
            kill.xid = int(chosen["xid"])
            kill.status = await xact_status(conn, kill.xid)
        return kill
    finally:
        await conn.close()


async def _checkpoint(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(Q["checkpoint"]))


# ---- sessions the server ends, seen late ------------------------------------------------------

# What PostgreSQL sends a session it ends (pg_terminate_backend, a fast shutdown) before
# closing it: an ErrorResponse, FATAL, SQLSTATE 57P01 (admin_shutdown).
_FIELDS: Final = b"SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0"
ADMIN_SHUTDOWN: Final = b"E" + (len(_FIELDS) + 4).to_bytes(4, "big") + _FIELDS

Connector = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def postgres_connector(dsn: str) -> Connector:
    """How to reach the server of a DSN: TCP, or the Unix socket the embedded server uses."""
    parts = urlsplit(dsn)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    if socket_dir.startswith("/"):
        [socket] = Path(socket_dir).glob(".s.PGSQL.*[0-9]")
        return lambda: asyncio.open_unix_connection(str(socket))
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    return lambda: asyncio.open_connection(host, port)


class LingeringProxy:
    """A TCP proxy to PostgreSQL, in a thread of its own, that can end every session as the
    server does, with the FATAL admin_shutdown message, but close the client's socket only
    `linger` seconds later. Meanwhile the client holds a connection that the server is
    finished with and that is not closed yet: what a client sees between a restart's FATAL
    and the EOF behind it, drawn out so that the next query surely falls in it."""

    def __init__(self, dsn: str, connect: Connector | None = None) -> None:
        # `connect`: where each new session goes, when not to the DSN's server.
        self._connect = connect or postgres_connector(dsn)
        self._user = urlsplit(dsn).username or "postgres"
        self._database = urlsplit(dsn).path.lstrip("/") or "postgres"
        self._loop = asyncio.new_event_loop()
        self._sessions: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter, asyncio.Future[Any]]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lingering proxy", daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def dsn(self) -> str:
        return f"postgresql://{self._user}@127.0.0.1:{self.port}/{self._database}"

    def _call(self, work: Awaitable[T]) -> T:
        async def run() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def end_sessions(self, linger: float) -> int:
        """End every open session the server's way; returns how many there were."""

        async def end() -> int:
            ended = list(self._sessions)
            self._sessions.clear()
            for client, upstream, piping in ended:
                piping.cancel()
                upstream.transport.abort()
                client.write(ADMIN_SHUTDOWN)
                self._loop.call_later(linger, client.transport.abort)
            return len(ended)

        return self._call(end())

    def close(self) -> None:
        async def close() -> None:
            self._server.close()
            for client, upstream, piping in list(self._sessions):
                piping.cancel()
                client.transport.abort()
                upstream.transport.abort()
            self._sessions.clear()

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await self._connect()
        except OSError:
            writer.transport.abort()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        piping = asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        session = (writer, upstream_writer, piping)
        self._sessions.add(session)
        with contextlib.suppress(asyncio.CancelledError):
            await piping
        self._sessions.discard(session)


# ---- a sizeable valid log, loaded without a projector -------------------------------------------


async def load_history(dsn: str, events: int, *, seed: int = 1, schema: str | None = None) -> int:
    """Append bench's generated history (claims bound to the ids the log gave their
    targets) through the store, in batches; returns the log's head."""
    conn = await database.connect(dsn, schema=schema)
    try:
        await database.migrate(conn)
        history = History(seed, total=events)
        ids: dict[int, str] = {}
        encoder = msgspec.json.Encoder()
        done = 0
        while done < events:
            # Claims name events at least CLAIM_LAG (2500) back: a chunk never names its own.
            chunk = history.take(min(2000, events - done))
            await importing.import_lines(conn, [encoder.encode(e) for e in bind(chunk, ids)])
            targets = {
                str(chunk[i - done]["idempotency_key"]): i
                for i in range(done, done + len(chunk))
                if i in history.targets
            }
            rows = await conn.fetch(
                "SELECT idempotency_key, event_id FROM events WHERE idempotency_key = ANY($1::text[])",
                list(targets),
            )
            ids.update({targets[r["idempotency_key"]]: str(r["event_id"]) for r in rows})
            done += len(chunk)
        return int(await conn.fetchval(Q["head_position"]))
    finally:
        await conn.close()


# ---- checks ----------------------------------------------------------------------------------


@dataclass
class LogCheck:
    """What the log holds of the requests: counted for the test's report."""

    events: int
    acknowledged: int  # requests acknowledged
    abandoned_stored: int  # requests given up that the log holds (whole)
    abandoned_absent: int  # requests given up that the log does not hold (at all)


async def check_log(dsn: str, requests: list[Request]) -> LogCheck:
    """Positions are exactly 1..N; each idempotency key is stored once; every
    acknowledged event is stored at the position its answer gave; every request is in
    the log whole, at consecutive positions in one transaction (one recorded_at), or not
    at all; and the log holds nothing no request sent."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT position, idempotency_key, recorded_at FROM events ORDER BY position")
    finally:
        await conn.close()
    positions = [r["position"] for r in rows]
    assert positions == list(range(1, len(rows) + 1)), "positions are not gap-free from 1"
    keys = Counter(r["idempotency_key"] for r in rows)
    assert not [k for k, n in keys.items() if n > 1], "an idempotency key is stored twice"
    stored = {r["idempotency_key"]: r for r in rows}
    sent = {k for r in requests for k in r.keys}
    assert set(stored) <= sent, f"the log holds events no request sent: {sorted(set(stored) - sent)[:5]}"
    check = LogCheck(len(rows), 0, 0, 0)
    for request in requests:
        found = [stored.get(k) for k in request.keys]
        held = [r for r in found if r is not None]
        where = f"request {request.client}/{request.number} ({len(request.keys)} events)"
        assert len(held) in (0, len(found)), f"{where} is stored in part: {len(held)} of {len(found)}"
        if held:
            at = [r["position"] for r in held]
            assert at == list(range(at[0], at[0] + len(at))), f"{where} is not at consecutive positions: {at}"
            assert len({r["recorded_at"] for r in held}) == 1, f"{where} was stored by several transactions"
        if request.answer is not None:
            check.acknowledged += 1
            assert held, f"{where} was acknowledged and is not stored"
            assert [e["position"] for e in request.answer] == [r["position"] for r in held], where
        elif request.abandoned:
            if held:
                check.abandoned_stored += 1
            else:
                check.abandoned_absent += 1
    return check


async def beyond(conn: asyncpg.Connection, position: int) -> dict[str, int]:
    """Rows opened or closed after a position: what a batch past the checkpoint left."""
    found = {}
    for table in ROWS:
        found[table] = int(
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE lower(positions) > $1 "
                "OR (NOT upper_inf(positions) AND upper(positions) > $1)",
                position,
            )
        )
    return {t: n for t, n in found.items() if n}


async def wait_projected(dsn: str, seconds: float) -> float:
    """Wait until the checkpoint is the log's head; returns the seconds it took."""
    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        while True:
            row = await conn.fetchrow(Q["head_and_checkpoint"])
            assert row is not None
            if row["projected"] == row["head"]:
                return time.monotonic() - started
            if time.monotonic() - started > seconds:
                raise AssertionError(
                    f"the projection is at {row['projected']} of {row['head']} after {seconds} s"
                )
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def rebuilt(env: dict[str, str], dsn: str) -> dict[str, list[tuple[str, ...]]]:
    """Run `hiring-news rebuild` on the test's database; the snapshot of what it made."""
    done = cli(["rebuild"], env)
    assert done.returncode == 0, done.stderr
    tables, twice = asyncio.run(cache(dsn))
    assert not twice
    return tables


def batches(*procs: Proc) -> list[tuple[int, int]]:
    """The (first, last) positions of every batch the processes' projectors committed, from
    their `projected` debug lines, in order."""
    return sorted(
        (line["position"] - line["events"] + 1, line["position"])
        for p in procs
        for line in p.logged("projected")
    )


def logged_batches(procs: list[Proc], head: int, seconds: float = 10) -> list[tuple[int, int]]:
    """The batches the processes logged, once they reach the head: a process logs a batch
    just after its commit, so the checkpoint may be at the head a moment before the line
    is written."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: max((last for _, last in batches(*procs)), default=0) >= head, seconds, "")
    return batches(*procs)


def covers_once(spans: list[tuple[int, int]], head: int) -> bool:
    """Whether the batches take every position from 1 to head exactly once."""
    expected = 1
    for first, last in spans:
        if first != expected:
            return False
        expected = last + 1
    return expected == head + 1
