"""The soak's traffic: writers and readers at a steady pace, and the tally of what they
were answered.

Both keep their pace whatever the answers take: a load offered at a steady rate, so a
service that slows down shows it as latency, not as a lighter load.

Writers: each tells a world of its own (`bench.history` with its own seed and id prefix,
so no writer waits on another's ids), in order, one request after the other, single
events and batches, claims bound to the event ids earlier answers gave. A writer behind
its pace after a slow answer sends what it owes in one larger batch, as a scraper with a
backlog does. Some requests go
again on purpose with the same idempotency keys: once acknowledged (a client that lost the
answer: answered the same, every event a replay, nothing stored), or twice at once, one
copy to each API process (two clients racing: one stores, the other is its replay); and a
few single events go again with other content under the same key (a 409, nothing stored).
A request that fails (a transport error, a 5xx) is retried with the same body, as a client
would.

Readers: one question every 1/rate seconds, each in flight on its own (at most
READERS at once: a question due while that many are unanswered is not asked, and
counted), about rosters, timelines, trees and flows of ids the writers have had acknowledged,
with `as_of` (a position at or after the one that introduced the id: answered exactly as
of it, or a 503 with Retry-After when the projection is further behind than a read waits)
or without (answered as of at least every event acknowledged before the request was sent,
unless the answer says it lags, with Projection-Lag).

What either sees that the design forbids is a failure, in words, in `Tally.failures`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import httpx
import msgspec

from bench.history import History, bind
from bench.procs import BOOTSTRAP_KEY

REPLAY: Final = 0.05  # of acknowledged requests: sent again once answered
RACE: Final = 0.03  # of requests: sent to both API processes at once
CONFLICT: Final = 0.02  # of acknowledged single events: sent again with other content
AS_OF: Final = 0.4  # of reads: asked as of a position
MOST: Final = 100  # events in a request at most
# A claim names an event at least this far back in its world: never one of its own
# request (bound before it is sent), and soon enough that a short soak has claims.
CLAIM_LAG: Final = 2 * MOST
ATTEMPTS: Final = 8  # a request failing this often in a row is given up (and reported)
READERS: Final = 32  # questions in flight at most
# The questions' shares. Flows are few: an answer costs time in proportion to every move
# in the log (and holds its API process meanwhile), so more would make the soak about them.
READS: Final = {"roster": 45, "timeline": 33, "tree": 20, "flows": 2}
WINDOW: Final = 10.0  # seconds: the latencies a sample summarises

_encoder = msgspec.json.Encoder()


@dataclass
class Tally:
    """Everything the writers and readers were answered, shared by them (one event loop)."""

    acknowledged: dict[str, tuple[int, str]] = field(default_factory=dict)  # key: (position, event_id)
    sent: set[str] = field(default_factory=set)
    last_position: int = 0  # the highest position any writer was answered with
    write_requests: int = 0  # POSTs answered 200 or 201, replays and races included
    replays: int = 0  # acknowledged requests sent again, answered as replays
    races: int = 0  # requests sent to both API processes at once
    conflicts: int = 0  # single events sent again with other content, answered 409
    retried: int = 0  # attempts after a failed one
    abandoned: int = 0  # requests given up after ATTEMPTS failures
    types: Counter[str] = field(default_factory=Counter)  # acknowledged events, by type
    reads: Counter[str] = field(default_factory=Counter)  # answered reads, by kind
    lagging: int = 0  # reads answered behind the log, with Projection-Lag
    waited_out: int = 0  # as_of reads answered 503 Retry-After: the projection was further behind
    statuses: Counter[str] = field(default_factory=Counter)  # "POST 201", "GET 200", ...
    transport: Counter[str] = field(default_factory=Counter)  # exceptions, by class
    write_ms: list[float] = field(default_factory=list)
    read_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in READS})
    not_asked: int = 0  # questions due while READERS were unanswered
    recent: collections.deque[tuple[float, str, float]] = field(default_factory=collections.deque)
    server_errors: list[str] = field(default_factory=list)  # 5xx but 503s, with what was asked
    failures: list[str] = field(default_factory=list)

    def took(self, kind: str, ms: float) -> None:
        (self.write_ms if kind == "write" else self.read_ms[kind]).append(ms)
        self.recent.append((time.monotonic(), kind, ms))

    def latencies(self) -> dict[str, dict[str, float]]:
        """p50 and p99 of each kind over the last WINDOW seconds, in ms."""
        since = time.monotonic() - WINDOW
        while self.recent and self.recent[0][0] < since:
            self.recent.popleft()
        by_kind: dict[str, list[float]] = {}
        for _, kind, ms in self.recent:
            by_kind.setdefault(kind, []).append(ms)
        out = {}
        for kind, values in by_kind.items():
            values.sort()
            out[kind] = {
                "p50": round(values[len(values) // 2], 1),
                "p99": round(values[min(len(values) - 1, int(0.99 * len(values)))], 1),
            }
        return out

    def fail(self, text: str) -> None:
        if len(self.failures) < 200:
            self.failures.append(text)

    @property
    def events(self) -> int:
        return len(self.acknowledged)

    @property
    def errors(self) -> int:
        """Answers no client wants: transport errors, 5xx, and anything the design forbids."""
        fives = sum(n for s, n in self.statuses.items() if s.split()[1].startswith("5"))
        return sum(self.transport.values()) + fives - self.waited_out + len(self.failures)


@dataclass(frozen=True)
class Known:
    """An id the log holds from `position` on, and a day it meant something."""

    id: str
    position: int
    day: date


@dataclass(frozen=True)
class Question:
    kind: str
    path: str
    params: dict[str, str]
    as_of: int | None


@dataclass
class Catalog:
    """The ids the writers have had acknowledged, for the readers to ask about."""

    teams: list[Known] = field(default_factory=list)
    labs: list[Known] = field(default_factory=list)
    companies: list[Known] = field(default_factory=list)
    people: list[Known] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    latest: date = date(1994, 1, 1)

    def learn(self, world: History, events: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
        today = world.today
        self.latest = max(self.latest, today)
        for event, answer in zip(events, answers, strict=True):
            data = event["data"]
            for name in ("org_id", "person_id"):
                ident = data.get(name)
                if not isinstance(ident, str) or ident in self.seen:
                    continue
                self.seen.add(ident)
                known = Known(ident, int(answer["position"]), today)
                if name == "person_id":
                    self.people.append(known)
                    continue
                org = world.orgs.get(ident)
                kind = org.kind if org is not None else "team"
                {"team": self.teams, "lab": self.labs, "company": self.companies}[kind].append(known)

    def question(self, rng: random.Random, last: int) -> Question | None:
        """A read of ids known by position `last`, with as_of or not."""
        kind = rng.choices(list(READS), list(READS.values()))[0]
        if kind == "roster" and self.teams:
            pool, many = (self.labs, True) if self.labs and rng.random() < 0.2 else (self.teams, False)
            org = rng.choice(pool)
            params = {"on": self._day(rng, org)}
            if many:
                params["include"] = "suborgs"
            return self._asked(rng, kind, f"/orgs/{org.id}/roster", params, org.position, last)
        if kind == "timeline" and self.people:
            person = rng.choice(self.people)
            return self._asked(rng, kind, f"/people/{person.id}/timeline", {}, person.position, last)
        if kind == "tree" and self.companies:
            org = rng.choice(self.companies)
            return self._asked(
                rng, kind, f"/orgs/{org.id}/tree", {"on": self._day(rng, org)}, org.position, last
            )
        if kind == "flows" and len(self.companies) >= 2:
            a, b = rng.sample(self.companies, 2)
            params = {"from": a.id, "to": b.id}
            return self._asked(rng, kind, "/flows", params, max(a.position, b.position), last)
        return None

    def _day(self, rng: random.Random, known: Known) -> str:
        span = max((self.latest - known.day).days, 0)
        return (known.day + timedelta(days=rng.randint(0, span))).isoformat()

    @staticmethod
    def _asked(
        rng: random.Random, kind: str, path: str, params: dict[str, str], since: int, last: int
    ) -> Question:
        if rng.random() < AS_OF and last >= since:
            at = rng.randint(since, last)
            return Question(kind, path, {**params, "as_of": str(at)}, at)
        return Question(kind, path, params, None)


async def sleep_until(moment: float, stop: asyncio.Event) -> None:
    """Sleep until the loop's clock reads `moment`, or until `stop` is set."""
    delay = moment - asyncio.get_running_loop().time()
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


def clients(bases: list[str], *, timeout: float = 30.0) -> list[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}", "Content-Type": "application/json"}
    return [httpx.AsyncClient(base_url=b, timeout=timeout, headers=headers) for b in bases]


@dataclass
class Answer:
    status: int  # 0: no answer after every attempt
    events: list[dict[str, Any]]
    attempts: int


class Writer:
    """Posts its world's events in order at `rate` events per second (see the module)."""

    def __init__(
        self,
        number: int,
        apis: list[httpx.AsyncClient],
        rate: float,
        total: int,
        tally: Tally,
        catalog: Catalog,
        seed: int,
    ) -> None:
        self.number = number
        self.apis = apis
        self.rate = rate
        self.tally = tally
        self.catalog = catalog
        self.rng = random.Random(seed * 7919 + number)
        # `total` paces valid time: the world's 31 years pass over the run.
        self.world = History(
            seed * 100 + number, total=max(total, 1000), prefix=f"w{number}-", claim_lag=CLAIM_LAG
        )
        self.ids: dict[int, str] = {}
        self._next_api = number

    def _size(self) -> int:
        r = self.rng.random()
        return 1 if r < 0.6 else self.rng.randint(2, 10) if r < 0.9 else self.rng.randint(11, MOST)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        started, told = loop.time(), 0
        while True:
            size = self._size()
            # Sent once its last event is due; behind, with everything owed (a backlog).
            await sleep_until(started + (told + size) / self.rate, stop)
            if stop.is_set():
                return
            owed = int((loop.time() - started) * self.rate) - told
            size = max(size, min(owed, MOST))
            told += size
            first = self.world.index
            events = bind(self.world.take(size), self.ids)
            body = _encoder.encode(events[0] if size == 1 else events)
            keys = [str(e["idempotency_key"]) for e in events]
            self.tally.sent.update(keys)
            if self.rng.random() < RACE and len(self.apis) > 1:
                answers = await self._race(body, keys)
            else:
                answer = await self._post(body, self._api())
                answers = self._fresh(answer, keys)
            if answers is not None:
                self._record(first, events, keys, answers)
                if self.rng.random() < REPLAY:
                    await self._replay(body, keys)
                if size == 1 and self.rng.random() < CONFLICT:
                    await self._conflict(events[0])

    def _api(self) -> httpx.AsyncClient:
        self._next_api += 1
        return self.apis[self._next_api % len(self.apis)]

    async def _post(self, body: bytes, api: httpx.AsyncClient) -> Answer:
        """POST until answered but by a failure (transport error, 5xx): retried as is."""
        status = 0
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                self.tally.retried += 1
            started = time.perf_counter()
            try:
                response = await api.post("/events", content=body)
            except httpx.TransportError as error:
                self.tally.transport[type(error).__name__] += 1
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                continue
            status = response.status_code
            self.tally.statuses[f"POST {status}"] += 1
            if status in (200, 201):
                self.tally.took("write", (time.perf_counter() - started) * 1000)
                self.tally.write_requests += 1
                return Answer(status, list(response.json()["events"]), attempt)
            if status < 500:
                return Answer(status, [], attempt)
            if status != 503:
                self.tally.server_errors.append(f"POST /events answered {status}: {response.text[:300]}")
            wait = float(response.headers.get("Retry-After", "0") or 0)
            await asyncio.sleep(min(max(wait, 0.2 * 2**attempt), 5.0))
        self.tally.abandoned += 1
        self.tally.fail(
            f"writer {self.number}: a request failed {ATTEMPTS} times in a row (last status {status})"
        )
        return Answer(0, [], ATTEMPTS)

    def _fresh(self, answer: Answer, keys: list[str], *, racing: bool = False) -> list[dict[str, Any]] | None:
        """The answer to new keys, if it is one: each key once, in order, stored by one
        transaction at consecutive positions; replays only when an earlier attempt (or,
        racing, the other copy) may have stored them."""
        if answer.status == 0:
            return None
        where = f"writer {self.number}, keys {keys[0]}..{keys[-1]}"
        if answer.status not in (200, 201):
            self.tally.fail(f"{where}: POST answered {answer.status}")
            return None
        if [a["idempotency_key"] for a in answer.events] != keys:
            self.tally.fail(f"{where}: the answer's keys are not the request's")
            return None
        stored = [a for a in answer.events if not a["replayed"]]
        if answer.attempts == 1 and not racing and len(stored) != len(keys):
            self.tally.fail(f"{where}: new keys answered as replays on the first attempt")
        positions = [int(a["position"]) for a in stored]
        if positions != list(range(positions[0], positions[0] + len(positions)) if positions else []):
            self.tally.fail(f"{where}: one request's events at positions {positions[:5]}... not consecutive")
        return answer.events

    def _record(
        self, first: int, events: list[dict[str, Any]], keys: list[str], answers: list[dict[str, Any]]
    ) -> None:
        for i, (key, answer) in enumerate(zip(keys, answers, strict=True)):
            at = (int(answer["position"]), str(answer["event_id"]))
            before = self.tally.acknowledged.get(key)
            if before is None:
                self.tally.acknowledged[key] = at
                self.tally.types[events[i]["type"]] += 1
            elif before != at:
                self.tally.fail(f"{key} answered at {at}, and earlier at {before}")
            self.tally.last_position = max(self.tally.last_position, at[0])
            if first + i in self.world.targets:
                self.ids[first + i] = at[1]
        self.catalog.learn(self.world, events, answers)

    def _same(self, answer: Answer, keys: list[str], what: str) -> bool:
        """Whether a replay was answered as the original was: every key, same position and
        id, each flagged a replay."""
        got = [(a["idempotency_key"], (int(a["position"]), str(a["event_id"]))) for a in answer.events]
        if got != [(k, self.tally.acknowledged[k]) for k in keys]:
            self.tally.fail(f"writer {self.number}: {what} of {keys[0]} answered otherwise than the original")
            return False
        return True

    async def _replay(self, body: bytes, keys: list[str]) -> None:
        answer = await self._post(body, self._api())
        if answer.status == 0:
            return
        if answer.status != 200 or not all(a["replayed"] for a in answer.events):
            self.tally.fail(
                f"writer {self.number}: a replay of {keys[0]} answered {answer.status}, not 200 replayed"
            )
        elif self._same(answer, keys, "a replay"):
            self.tally.replays += 1

    async def _race(self, body: bytes, keys: list[str]) -> list[dict[str, Any]] | None:
        """The same request to both APIs at once: both answered alike, each event stored by
        one of them (by neither only if an attempt whose answer was lost stored it)."""
        self.tally.races += 1
        one, two = await asyncio.gather(self._post(body, self.apis[0]), self._post(body, self.apis[1]))
        first = self._fresh(one, keys, racing=True) if one.status else None
        second = self._fresh(two, keys, racing=True) if two.status else None
        if first is None or second is None:
            if first is None and second is None:
                self.tally.fail(
                    f"writer {self.number}: neither copy of a raced request {keys[0]} was acknowledged"
                )
            return first or second
        same = [(a["position"], a["event_id"]) for a in first] == [
            (a["position"], a["event_id"]) for a in second
        ]
        stored = [int(not a["replayed"]) + int(not b["replayed"]) for a, b in zip(first, second, strict=True)]
        retried = one.attempts > 1 or two.attempts > 1
        if not same or any(n > 1 for n in stored) or (not retried and any(n != 1 for n in stored)):
            self.tally.fail(
                f"writer {self.number}: the two copies of {keys[0]} were answered {stored}, same={same}"
            )
        return first

    async def _conflict(self, event: dict[str, Any]) -> None:
        other = copy.deepcopy(event)
        other["source"]["url"] += "-corrected"
        answer = await self._post(_encoder.encode(other), self._api())
        if answer.status == 409:
            self.tally.conflicts += 1
        elif answer.status != 0:
            self.tally.fail(
                f"writer {self.number}: {event['idempotency_key']} with other content answered {answer.status}"
            )


class Readers:
    """Asks the catalog's ids `rate` questions a second, each on its own (see the module)."""

    def __init__(
        self, apis: list[httpx.AsyncClient], rate: float, tally: Tally, catalog: Catalog, seed: int
    ) -> None:
        self.apis = apis
        self.rate = rate
        self.tally = tally
        self.catalog = catalog
        self.rng = random.Random(seed * 104729)
        self.in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        started, asked = loop.time(), 0
        try:
            while True:
                asked += 1
                await sleep_until(started + asked / self.rate, stop)
                if stop.is_set():
                    break
                question = self.catalog.question(self.rng, self.tally.last_position)
                if question is None:
                    continue
                if len(self.in_flight) >= READERS:
                    self.tally.not_asked += 1
                    continue
                task = asyncio.create_task(self._ask(self.apis[asked % len(self.apis)], question))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            # The questions in flight get their answers (each bounded by the client's timeout).
            await asyncio.gather(*self.in_flight)
        finally:
            for task in self.in_flight:
                task.cancel()

    async def _ask(self, api: httpx.AsyncClient, q: Question) -> None:
        before = self.tally.last_position
        started = time.perf_counter()
        try:
            response = await api.get(q.path, params=q.params)
        except httpx.TransportError as error:
            self.tally.transport[type(error).__name__] += 1
            return
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code
        self.tally.statuses[f"GET {status}"] += 1
        asked = f"GET {q.path}?{'&'.join(f'{k}={v}' for k, v in q.params.items())}"
        lagging = "Projection-Lag" in response.headers
        if status == 200:
            self.tally.reads[q.kind] += 1
            self.tally.took(q.kind, elapsed)
            at = int(response.json()["as_of"])
            if q.as_of is not None and at != q.as_of:
                self.tally.fail(f"{asked} answered as of {at}")
            elif q.as_of is None and lagging:
                self.tally.lagging += 1
            elif q.as_of is None and at < before:
                self.tally.fail(f"{asked} answered as of {at}, before {before}, already acknowledged")
        elif status == 503 and q.as_of is not None and "Retry-After" in response.headers:
            self.tally.waited_out += 1
        elif status == 404 and q.as_of is None and lagging:
            self.tally.lagging += 1  # the id is newer than the projection the answer had to use
        elif status >= 500 and status != 503:
            self.tally.server_errors.append(f"{asked} answered {status}: {response.text[:300]}")
        elif status != 503:
            self.tally.fail(f"{asked} answered {status}: {response.text[:300]}")
