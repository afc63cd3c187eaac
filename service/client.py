"""hiring-news from Python: a client for scrapers and readers, sync (`Client`) and async
(`AsyncClient`).

    from service.client import Client

    with Client("http://localhost:8000", key=KEY) as news:
        news.post({"type": "member.joined", "source": {...}, "data": {...}})
        roster = news.roster("meta-superintelligence-labs", on="2025-07-10")

A post cannot store an event twice. Every event without an idempotency key gets one from
its content (`events.content_key`, the rule `hiring-news import` uses), so a retry, or a
second run of a scraper, is a replay, never a copy, even when the first attempt reached
the server and only its answer was lost. Failures that may pass are retried with
exponential backoff and full jitter, bounded in attempts and in time: a 5xx, a 429 (after
its Retry-After), a refused or dropped connection, a timeout. Any other 4xx is raised at
once as a `ProblemError` carrying the problem's field errors; an event that is invalid
here already is raised the same way before anything is sent. Batches are split at the
server's limits (1000 events, 1 MiB), and lists (`orgs`, `people`, `state`, `events`)
follow their pages, every page read as of the first one's position.

Answers are the service's own msgspec Structs (`service.answers`, `service.wire`),
decoded from the very bytes the API encoded them to. The client imports neither the
server nor a database driver: httpx and msgspec.

Both forms share every rule: an operation is a generator that yields the requests it
needs and receives their bodies (`_Call`), and each form only sends them, synchronously
or not, and sleeps between retries.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, TypeAlias, TypeVar, cast

import httpx
import msgspec

from service import answers
from service import events as ev
from service.wire import (
    Accepted,
    AppendAnswer,
    EventPage,
    FieldError,
    Orgs,
    People,
    PersonSummary,
    Problem,
    StatePage,
    StoredEvent,
    field_error,
    pointer_of,
)

T = TypeVar("T")
EventLike: TypeAlias = "ev.Event | Mapping[str, Any]"
Day: TypeAlias = "date | str"
Moment: TypeAlias = "datetime | str"
MinStatus: TypeAlias = Literal["rumor", "reported", "confirmed"]

USER_AGENT: Final = "hiring-news-client"
# The server's limits: a POST holds at most this many events and bytes.
MAX_BATCH: Final = ev.MAX_BATCH
MAX_BODY_BYTES: Final = ev.MAX_BODY_BYTES
PAGE: Final = 1000  # the largest page every list gives


# ---- errors ---------------------------------------------------------------------------------


class ClientError(Exception):
    """Anything this client raises about the service."""


class ProblemError(ClientError):
    """A 4xx the service answered (or an event invalid before sending, as a 422): retrying
    cannot help. `errors` names each field at fault."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.status = problem.status
        self.title = problem.title
        self.detail = problem.detail
        self.errors: list[FieldError] = list(problem.errors)
        fields = "; ".join(
            f"{e.field}: {e.reason}" for e in self.errors if e.reason not in (problem.detail or "")
        )
        super().__init__(
            f"{problem.status} {problem.title}: {problem.detail or ''}" + (f" [{fields}]" if fields else "")
        )


def _at(offset: int | None, error: ProblemError) -> ProblemError:
    """The error of a batch, its `$[i]` paths made the caller's (`$[offset + i]`, or `$`
    for an event posted alone)."""

    def path(field: str) -> str:
        match = _INDEX.match(field)
        if match is None:
            return field
        rest = field[match.end() :]
        return "$" + rest if offset is None else f"$[{offset + int(match.group(1))}]{rest}"

    errors = [FieldError(path(e.field), pointer_of(path(e.field)), e.reason) for e in error.errors]
    return ProblemError(msgspec.structs.replace(error.problem, errors=errors))


_INDEX: Final = re.compile(r"^\$\[(\d+)\]")


class Unavailable(ClientError):
    """The service still failed (5xx, 429, no connection) when the retries ran out."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


def _invalid(index: int | None, error: msgspec.ValidationError) -> ProblemError:
    base = "$" if index is None else f"$[{index}]"
    found = field_error(str(error))
    path = base + found.field[1:]
    problem_ = Problem(
        type="about:blank",
        title="Unprocessable Content",
        status=422,
        detail=f"invalid event: {found.reason}",
        errors=[FieldError(path, pointer_of(path), found.reason)],
    )
    return ProblemError(problem_)


# ---- retries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """How long to keep trying one request. The n-th wait is drawn uniformly from
    [0, min(cap, base * 2**n)] ("full jitter": many clients retrying after one outage do not
    come back in step), and is at least the server's Retry-After when it sends one."""

    attempts: int = 10  # tries of one request, the first included
    base: float = 0.25  # seconds
    cap: float = 15.0  # seconds: no wait longer than this, Retry-After aside
    total: float = 120.0  # seconds: give up once the next try would start later than this

    def delay(self, attempt: int, retry_after: float | None) -> float:
        drawn = random.uniform(0, min(self.cap, self.base * 2**attempt))
        return drawn if retry_after is None else max(drawn, retry_after)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:  # or an HTTP date
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


# Failures of the exchange itself: the request may or may not have reached the server,
# which content keys make harmless to repeat. (Not UnsupportedProtocol or a malformed
# request of ours: those would fail the same way again.)
_TRANSIENT: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

_problem: Final = msgspec.json.Decoder(Problem)


def _failure(response: httpx.Response) -> ProblemError:
    try:
        found = _problem.decode(response.content)
    except msgspec.DecodeError:
        found = Problem(
            type="about:blank",
            title=response.reason_phrase,
            status=response.status_code,
            detail=response.text[:500] or None,
        )
    return ProblemError(found)


@dataclass
class _Attempts:
    """One request's tries: what failed last, and whether to go on (and after how long)."""

    retry: Retry
    started: float = field(default_factory=time.monotonic)
    count: int = 0
    last: str = ""

    def failed(self, why: str, retry_after: float | None) -> float:
        """The wait before the next try; raises Unavailable when there is none."""
        self.count += 1
        self.last = why
        wait = self.retry.delay(self.count - 1, retry_after)
        elapsed = time.monotonic() - self.started
        if self.count >= self.retry.attempts or elapsed + wait > self.retry.total:
            raise Unavailable(
                f"gave up after {self.count} attempts in {elapsed:.1f} s; last: {why}", self.count
            )
        return wait


# ---- operations, shared by both forms -----------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


Op: TypeAlias = Generator[_Call, bytes, T]

_encoder: Final = msgspec.json.Encoder()
_append: Final = msgspec.json.Decoder(AppendAnswer)
_event_page: Final = msgspec.json.Decoder(EventPage)
_stored: Final = msgspec.json.Decoder(StoredEvent)
_roster: Final = msgspec.json.Decoder(answers.Roster)
_timeline: Final = msgspec.json.Decoder(answers.Timeline)
_org: Final = msgspec.json.Decoder(answers.OrgView)
_tree: Final = msgspec.json.Decoder(answers.Tree)
_flows: Final = msgspec.json.Decoder(answers.Flows)
_orgs: Final = msgspec.json.Decoder(Orgs)
_people: Final = msgspec.json.Decoder(People)
_state: Final = msgspec.json.Decoder(StatePage)


def typed(event: EventLike, index: int | None = None) -> ev.Event:
    """An event as the service types it, keyed by its content if it has no key; an invalid
    one raises the ProblemError the server would answer (422, with the field)."""
    try:
        found = event if isinstance(event, ev.Envelope) else msgspec.convert(event, ev.Event)
    except msgspec.ValidationError as error:
        raise _invalid(index, error) from None
    return ev.keyed(found)


def batches(
    events: Iterable[ev.Event], *, max_events: int = MAX_BATCH, max_bytes: int = MAX_BODY_BYTES
) -> Iterator[list[ev.Event]]:
    """Consecutive batches within the server's limits, each holding an idempotency key once
    (the server refuses a key twice in one batch; the same claim later is a replay)."""
    batch: list[ev.Event] = []
    size = 2  # the array's brackets
    keys: set[str | None] = set()
    for event in events:
        length = len(_encoder.encode(event)) + 1  # and its comma
        if batch and (len(batch) >= max_events or size + length > max_bytes or event.idempotency_key in keys):
            yield batch
            batch, size, keys = [], 2, set()
        batch.append(event)
        size += length
        keys.add(event.idempotency_key)
    if batch:
        yield batch


def _post(events: list[EventLike], alone: bool, max_events: int, max_bytes: int) -> Op[list[Accepted]]:
    keyed = [typed(e, None if alone else i) for i, e in enumerate(events)]
    accepted: list[Accepted] = []
    for batch in batches(keyed, max_events=max_events, max_bytes=max_bytes):
        try:
            body = yield _Call("POST", "/events", body=_encoder.encode(batch))
        except ProblemError as error:
            raise _at(None if alone else len(accepted), error) from None
        accepted += _append.decode(body).events
    return accepted


def _params(**values: Any) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        if isinstance(value, date):  # a datetime too
            out[name] = value.isoformat()
        elif value is True:
            out[name] = "suborgs"
        else:
            out[name] = str(value)
    return out


def _when(known_at: Moment | None, as_of: int | None) -> dict[str, str]:
    return _params(known_at=known_at, as_of=as_of)


def _get(path: str, decoder: msgspec.json.Decoder[T], params: dict[str, str]) -> Op[T]:
    body = yield _Call("GET", path, params)
    return decoder.decode(body)


def _orgs_op(on: Day | None, known_at: Moment | None, as_of: int | None) -> Op[list[answers.OrgView]]:
    found: list[answers.OrgView] = []
    params = _params(on=on, limit=PAGE) | _when(known_at, as_of)
    while True:
        page = yield from _get("/orgs", _orgs, params)
        found += page.orgs
        if page.next is None:
            return found
        # Later pages as of the first one's position, whatever was appended since.
        params = _params(on=page.on, limit=PAGE, as_of=page.as_of, after=page.next)


def _people_op(known_at: Moment | None, as_of: int | None) -> Op[list[PersonSummary]]:
    found: list[PersonSummary] = []
    params = _params(limit=PAGE) | _when(known_at, as_of)
    while True:
        page = yield from _get("/people", _people, params)
        found += page.people
        if page.next is None:
            return found
        params = _params(limit=PAGE, as_of=page.as_of, after=page.next)


def _state_op(
    on: Day | None, known_at: Moment | None, as_of: int | None, min_status: MinStatus | None
) -> Op[answers.StateView]:
    orgs: list[answers.OrgState] = []
    params = _params(on=on, min_status=min_status, limit=PAGE) | _when(known_at, as_of)
    while True:
        page = yield from _get("/state", _state, params)
        orgs += page.orgs
        if page.next is None:
            return answers.StateView(on=page.on, as_of=page.as_of, orgs=orgs)
        params = _params(on=page.on, min_status=min_status, limit=PAGE, as_of=page.as_of, after=page.next)


def _events_op(after: int, types: Iterable[str] | None, limit: int | None) -> Op[list[StoredEvent]]:
    found: list[StoredEvent] = []
    kinds = None if types is None else ",".join(types)
    while limit is None or len(found) < limit:
        size = PAGE if limit is None else min(PAGE, limit - len(found))
        page = yield from _get("/events", _event_page, _params(after=after, limit=size, type=kinds))
        found += page.events
        if page.next is None:
            break
        after = page.next
    return found


# ---- the two forms --------------------------------------------------------------------------------


class _Base:
    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        retry: Retry | None = None,
        max_events: int = MAX_BATCH,
        max_bytes: int = MAX_BODY_BYTES,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or Retry()
        self.max_events = max_events
        self.max_bytes = max_bytes
        # Told of every retry: why, and how long the client waits before it.
        self.on_retry = on_retry
        self.requests = 0  # requests sent, retries included
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if key is not None:
            self._headers["Authorization"] = f"Bearer {key}"

    def _outcome(self, response: httpx.Response, attempts: _Attempts) -> bytes | float:
        """The body of a success, or the wait before the next try; raises a 4xx at once."""
        status = response.status_code
        if status < 400:
            return response.content
        if not _retryable(status):
            raise _failure(response)
        return self._again(attempts, f"{status} {response.reason_phrase}", _retry_after(response))

    def _again(self, attempts: _Attempts, why: str, retry_after: float | None) -> float:
        wait = attempts.failed(why, retry_after)
        if self.on_retry is not None:
            self.on_retry(why, wait)
        return wait


class Client(_Base):
    """The synchronous client: one httpx.Client, closed by `close()` or `with`."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(url, key, **options)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url, headers=self._headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> bytes:
        attempts = _Attempts(self.retry)
        while True:
            self.requests += 1
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.body,
                    headers={"Content-Type": "application/json"} if call.body is not None else None,
                )
            except _TRANSIENT as error:
                wait = self._again(attempts, f"{type(error).__name__}: {error}", None)
            else:
                outcome = self._outcome(response, attempts)
                if isinstance(outcome, bytes):
                    return outcome
                wait = outcome
            self._sleep(wait)

    def _run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                try:
                    body = self._send(call)
                except ProblemError as error:
                    call = op.throw(error)  # the operation may say more about it
                else:
                    call = op.send(body)
        except StopIteration as done:
            result: T = done.value
            return result

    # ---- writing ----

    def post(self, events: EventLike | Iterable[EventLike]) -> list[Accepted]:
        """Append one event or many, in order; one Accepted per event (`replayed` for those
        the log held already). Batches are split at the server's limits, each atomic."""
        return self._run(_post(*_many(events), self.max_events, self.max_bytes))

    # ---- reading ----

    def roster(
        self,
        org_id: str,
        *,
        on: Day | None = None,
        known_at: Moment | None = None,
        as_of: int | None = None,
        suborgs: bool = False,
        min_status: MinStatus | None = None,
    ) -> answers.Roster:
        params = _params(on=on, include=suborgs, min_status=min_status) | _when(known_at, as_of)
        return self._run(_get(f"/orgs/{org_id}/roster", _roster, params))

    def timeline(
        self, person_id: str, *, known_at: Moment | None = None, as_of: int | None = None
    ) -> answers.Timeline:
        return self._run(_get(f"/people/{person_id}/timeline", _timeline, _when(known_at, as_of)))

    def org(
        self, org_id: str, *, on: Day | None = None, known_at: Moment | None = None, as_of: int | None = None
    ) -> answers.OrgView:
        return self._run(_get(f"/orgs/{org_id}", _org, _params(on=on) | _when(known_at, as_of)))

    def tree(
        self, org_id: str, *, on: Day | None = None, known_at: Moment | None = None, as_of: int | None = None
    ) -> answers.Tree:
        return self._run(_get(f"/orgs/{org_id}/tree", _tree, _params(on=on) | _when(known_at, as_of)))

    def flows(
        self,
        from_id: str,
        to_id: str,
        *,
        since: Day | None = None,
        until: Day | None = None,
        known_at: Moment | None = None,
        as_of: int | None = None,
    ) -> answers.Flows:
        params = _params(**{"from": from_id, "to": to_id}, since=since, until=until) | _when(known_at, as_of)
        return self._run(_get("/flows", _flows, params))

    def orgs(
        self, *, on: Day | None = None, known_at: Moment | None = None, as_of: int | None = None
    ) -> list[answers.OrgView]:
        return self._run(_orgs_op(on, known_at, as_of))

    def people(self, *, known_at: Moment | None = None, as_of: int | None = None) -> list[PersonSummary]:
        return self._run(_people_op(known_at, as_of))

    def state(
        self,
        *,
        on: Day | None = None,
        known_at: Moment | None = None,
        as_of: int | None = None,
        min_status: MinStatus | None = None,
    ) -> answers.StateView:
        return self._run(_state_op(on, known_at, as_of, min_status))

    def events(
        self, *, after: int = 0, types: Iterable[str] | None = None, limit: int | None = None
    ) -> list[StoredEvent]:
        """The log after a position, in position order, following the pages (up to `limit`)."""
        return self._run(_events_op(after, types, limit))

    def event(self, event_id: str) -> StoredEvent:
        return self._run(_get(f"/events/{event_id}", _stored, {}))

    def get(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """Any GET, retried like the rest: the body, exactly as the API wrote it."""
        return self._send(_Call("GET", path, dict(params or {})))


class AsyncClient(_Base):
    """The asynchronous client: one httpx.AsyncClient, closed by `aclose()` or `async with`."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, key, **options)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> bytes:
        attempts = _Attempts(self.retry)
        while True:
            self.requests += 1
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.body,
                    headers={"Content-Type": "application/json"} if call.body is not None else None,
                )
            except _TRANSIENT as error:
                wait = self._again(attempts, f"{type(error).__name__}: {error}", None)
            else:
                outcome = self._outcome(response, attempts)
                if isinstance(outcome, bytes):
                    return outcome
                wait = outcome
            await asyncio.sleep(wait)

    async def _run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                try:
                    body = await self._send(call)
                except ProblemError as error:
                    call = op.throw(error)
                else:
                    call = op.send(body)
        except StopIteration as done:
            result: T = done.value
            return result

    async def post(self, events: EventLike | Iterable[EventLike]) -> list[Accepted]:
        return await self._run(_post(*_many(events), self.max_events, self.max_bytes))

    async def roster(
        self,
        org_id: str,
        *,
        on: Day | None = None,
        known_at: Moment | None = None,
        as_of: int | None = None,
        suborgs: bool = False,
        min_status: MinStatus | None = None,
    ) -> answers.Roster:
        params = _params(on=on, include=suborgs, min_status=min_status) | _when(known_at, as_of)
        return await self._run(_get(f"/orgs/{org_id}/roster", _roster, params))

    async def timeline(
        self, person_id: str, *, known_at: Moment | None = None, as_of: int | None = None
    ) -> answers.Timeline:
        return await self._run(_get(f"/people/{person_id}/timeline", _timeline, _when(known_at, as_of)))

    async def org(
        self, org_id: str, *, on: Day | None = None, known_at: Moment | None = None, as_of: int | None = None
    ) -> answers.OrgView:
        return await self._run(_get(f"/orgs/{org_id}", _org, _params(on=on) | _when(known_at, as_of)))

    async def tree(
        self, org_id: str, *, on: Day | None = None, known_at: Moment | None = None, as_of: int | None = None
    ) -> answers.Tree:
        return await self._run(_get(f"/orgs/{org_id}/tree", _tree, _params(on=on) | _when(known_at, as_of)))

    async def flows(
        self,
        from_id: str,
        to_id: str,
        *,
        since: Day | None = None,
        until: Day | None = None,
        known_at: Moment | None = None,
        as_of: int | None = None,
    ) -> answers.Flows:
        params = _params(**{"from": from_id, "to": to_id}, since=since, until=until) | _when(known_at, as_of)
        return await self._run(_get("/flows", _flows, params))

    async def orgs(
        self, *, on: Day | None = None, known_at: Moment | None = None, as_of: int | None = None
    ) -> list[answers.OrgView]:
        return await self._run(_orgs_op(on, known_at, as_of))

    async def people(
        self, *, known_at: Moment | None = None, as_of: int | None = None
    ) -> list[PersonSummary]:
        return await self._run(_people_op(known_at, as_of))

    async def state(
        self,
        *,
        on: Day | None = None,
        known_at: Moment | None = None,
        as_of: int | None = None,
        min_status: MinStatus | None = None,
    ) -> answers.StateView:
        return await self._run(_state_op(on, known_at, as_of, min_status))

    async def events(
        self, *, after: int = 0, types: Iterable[str] | None = None, limit: int | None = None
    ) -> list[StoredEvent]:
        return await self._run(_events_op(after, types, limit))

    async def event(self, event_id: str) -> StoredEvent:
        return await self._run(_get(f"/events/{event_id}", _stored, {}))

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """Any GET, retried like the rest: the body, exactly as the API wrote it."""
        return await self._send(_Call("GET", path, dict(params or {})))


def _many(events: EventLike | Iterable[EventLike]) -> tuple[list[EventLike], bool]:
    """The events, and whether one was posted alone (its errors then point at `$`)."""
    if isinstance(events, Mapping | ev.Envelope):
        return [cast("EventLike", events)], True
    return list(events), False


__all__ = [
    "Accepted",
    "AsyncClient",
    "Client",
    "ClientError",
    "FieldError",
    "ProblemError",
    "Retry",
    "StoredEvent",
    "Unavailable",
    "batches",
    "typed",
]
