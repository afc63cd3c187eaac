"""The read endpoints: rosters, orgs, trees, careers, flows and replay, on any date as known at any time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from litestar import Request, Response, Router, get
from litestar.params import PathParameter, QueryParameter

from service import answers, reads
from service import events as ev
from service.api.common import json_answer, pool, read_pool, settings
from service.api.contract import ETAG, PROJECTION_LAG, READ_SECURITY, read
from service.database import Connections
from service.dates import PartialDateError, asked_day
from service.problems import RETRY_AFTER_SECONDS, FieldError, ProblemError
from service.store import Conn
from service.watch import ProjectionWatch
from service.wire import Orgs, People, PersonSummary, StatePage

T = TypeVar("T")

# Days are taken as text and read by `asked_day`, so a bad one is refused naming the
# parameter and the reason (as the body's dates are), not with the decoder's generic words;
# the contract still says `format: date`.
On = Annotated[
    str | None,
    QueryParameter(format="date", description="the valid date, YYYY-MM-DD (default: today, UTC)"),
]
KnownAt = Annotated[
    datetime | None,
    QueryParameter(description="RFC 3339 timestamp: answer as the log knew it then (exclusive with as_of)"),
]
AsOf = Annotated[
    int | None, QueryParameter(ge=0, description="log position: answer as of it (exclusive with known_at)")
]
MinStatus = Annotated[
    Literal["rumor", "reported", "confirmed"],
    QueryParameter(description="the least sure claims a roster counts"),
]
OrgId = Annotated[str, PathParameter(pattern=ev.SLUG_PATTERN, description="an org id (slug)")]
PersonId = Annotated[str, PathParameter(pattern=ev.SLUG_PATTERN, description="a person id (slug)")]
# Lists are paged by id, the way GET /events is paged by position.
PAGE_DEFAULT: Final = 100
PAGE_MAX: Final = 1000
Limit = Annotated[
    int, QueryParameter(ge=1, le=PAGE_MAX, description=f"at most this many items (default {PAGE_DEFAULT})")
]
# Taken as text (Litestar would read `null` as absent) and checked: one enum in the contract.
Include = Annotated[
    str | None,
    QueryParameter(enum=["suborgs"], description="suborgs: add the sub-orgs on that date"),
]


def with_suborgs(include: str | None) -> bool:
    if include not in (None, "suborgs"):
        raise ProblemError(
            400,
            f"bad query parameter include: {include!r}",
            errors=[FieldError("include", "", "one of: suborgs")],
        )
    return include == "suborgs"


AfterOrg = Annotated[
    str | None,
    QueryParameter(
        pattern=ev.SLUG_PATTERN, description="return orgs with an id above this one (a page's `next`)"
    ),
]
AfterPerson = Annotated[
    str | None,
    QueryParameter(
        pattern=ev.SLUG_PATTERN, description="return people with an id above this one (a page's `next`)"
    ),
]


def _today() -> date:
    return datetime.now(UTC).date()


def day(name: str, text: str | None, default: date | None = None) -> date | None:
    """A day parameter, or a 400 naming it with the reason."""
    if text is None:
        return default
    try:
        return asked_day(text)
    except PartialDateError as error:
        raise ProblemError(
            400, f"bad query parameter {name}: {error}", errors=[FieldError(name, "", str(error))]
        ) from None


def on_day(text: str | None) -> date:
    found = day("on", text, _today())
    assert found is not None
    return found


@dataclass(frozen=True, slots=True)
class Reading:
    """Where an answer stands, and whether the projector kept it from the position asked."""

    stand: reads.Stand
    lagging: bool = False
    # The position the read asked for, when lagging kept it from it.
    asked: int | None = None
    # Answered by the primary, the read replica being behind: the rest of the answer is
    # read there too (`rows_at`), or rows a replica has not replayed would be missing.
    on_primary: bool = False


@asynccontextmanager
async def rows_at(request: Request[Any, Any, Any], at: Reading) -> AsyncIterator[Conn]:
    """A connection to read the rest of an answer standing at `at` on.

    Through a read replica, one whose server has replayed that position. Behind a load
    balancer over several standbys (a Kubernetes Service, CloudNativePG's `-ro`), a
    pool's connections reach different standbys, each replaying at its own pace: the
    position may have been found on one that a later connection does not reach, and
    another behind it would answer an older state under that position. A connection
    behind is given back and another asked for until the wait is over; then the primary
    reads the rows (it has the position, since a standby reached it). One statement more
    per read through a replica, for the reads that are more than one statement.
    """
    through = pool(request) if at.on_primary else read_pool(request)
    if through.pool is not pool(request).pool:
        watch: ProjectionWatch = request.app.state.watch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings(request).read_wait_seconds
        while True:
            async with through.acquire() as conn:
                if await reads.projected(conn) >= at.stand.position:
                    yield conn
                    return
            left = deadline - loop.time()
            if left <= 0:
                break
            await watch.moved(left)
    async with pool(request).acquire() as conn:
        yield conn


# One read: on a connection, at a position (`exact`: as given, not capped at this
# database's head), returning the answer (None while behind) and where it stands.
Attempt = Callable[[Conn, int | None, datetime | None, bool], Awaitable[tuple[T | None, reads.Stand]]]


async def waiting(
    request: Request[Any, Any, Any],
    as_of: int | None,
    known_at: datetime | None,
    attempt: Attempt[T],
    *,
    exact: bool = False,
) -> tuple[T, Reading]:
    """Run a read at the position it asks for, waiting for the projector to get there.

    Without `as_of` or `known_at` the read asks for the head when it arrives, so it
    reflects every event committed before it (read-your-writes); past the wait
    (HIRING_NEWS_READ_WAIT) it is answered at the projection's position, flagged as
    lagging. With either, past the wait it is a 503 with Retry-After. Through a read
    replica (DATABASE_READ_URL) the position asked is resolved on the primary first, so
    a replica behind it waits too, and never answers older data under a newer position;
    past the wait, a read without `as_of` is answered by the primary (see below).
    A connection is held only while a statement runs, never while waiting.
    """
    wait = settings(request).read_wait_seconds
    asked_as_of, asked_known_at = _known_at(as_of, known_at)
    replica = read_pool(request).pool is not pool(request).pool
    if not exact and replica:
        async with pool(request).acquire() as conn:
            asked_as_of = await reads.asked(conn, asked_as_of, asked_known_at)
        asked_known_at, exact = None, True
    found, stand = await _until(
        request, read_pool(request), asked_as_of, asked_known_at, exact, attempt, wait
    )
    if not stand.behind:
        assert found is not None
        return found, Reading(stand)
    not_yet = _not_projected(stand.asked, stand.position)
    if as_of is not None or known_at is not None:
        raise not_yet
    on_primary = False
    if replica:
        # A replica that has not replayed the head within the wait (its lag, or its
        # replay stopped) must not take a write back from the client that just made it:
        # the primary answers instead, at the same position, once, without waiting again;
        # behind only if its own projector is, and then flagged as lagging below.
        on_primary = True
        found, stand = await _until(request, pool(request), stand.asked, None, True, attempt, 0)
        if not stand.behind:
            assert found is not None
            return found, Reading(stand, on_primary=True)
    through = pool(request) if on_primary else read_pool(request)
    try:
        lagging, at = await _until(request, through, stand.position, None, True, attempt, wait)
    except ProblemError as error:
        unknown = error.__cause__
        if isinstance(unknown, reads.UnknownId):
            # An id the log has and the projection has not reached yet is no 404.
            if await _known(request, unknown, stand.asked):
                raise not_yet from None
            raise ProblemError(404, str(reads.UnknownId(unknown.kind, unknown.ident, stand.asked))) from None
        raise
    if at.behind:
        # Another replica behind the one that answered (a pooler over several).
        raise not_yet
    assert lagging is not None
    return lagging, Reading(at, lagging=True, asked=stand.asked, on_primary=on_primary)


async def _until(
    request: Request[Any, Any, Any],
    through: Connections,
    as_of: int | None,
    known_at: datetime | None,
    exact: bool,
    attempt: Attempt[T],
    wait: float,
) -> tuple[T | None, reads.Stand]:
    """Attempt a read until it is no longer behind or `wait` seconds have passed (a 404
    for an unknown id); the last attempt's answer (None while behind) and stand."""
    watch: ProjectionWatch = request.app.state.watch
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            async with through.acquire() as conn:
                found, stand = await attempt(conn, as_of, known_at, exact)
        except reads.UnknownId as error:
            raise ProblemError(404, str(error), errors=[]) from error
        if not stand.behind:
            return found, stand
        # Later attempts ask for exactly this position, wherever the head has gone since.
        as_of, known_at, exact = stand.asked, None, True
        left = deadline - loop.time()
        if left <= 0:
            return found, stand
        await watch.moved(left)


async def _known(request: Request[Any, Any, Any], unknown: reads.UnknownId, as_of: int) -> bool:
    """Whether the log (on the primary: a replica may lag) had the id by a position."""
    async with pool(request).acquire() as conn:
        return await reads.known(conn, unknown.kind, unknown.ident, as_of)


def _not_projected(asked: int, position: int) -> ProblemError:
    return ProblemError(
        503,
        f"position {asked} is not projected yet (the projection is at {position}); retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _standing(
    request: Request[Any, Any, Any],
    as_of: int | None,
    known_at: datetime | None,
    about: tuple[str, str] | None = None,
) -> Reading:
    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[reads.Stand, reads.Stand]:
        stand = await reads.stand(conn, as_of, known_at, about, exact=exact)
        return stand, stand

    return (await waiting(request, as_of, known_at, attempt))[1]


@asynccontextmanager
async def reading(
    request: Request[Any, Any, Any],
    as_of: int | None,
    known_at: datetime | None,
    about: tuple[str, str] | None = None,
) -> AsyncIterator[tuple[Conn, Reading]]:
    """A connection and where the answer stands, once the projection is there (404 if
    `about` is unknown then).

    No transaction: every row read is selected by `positions @> P` with P at most the
    projection's checkpoint, and rows that held at P never change, so statements read
    at different moments still agree. That saves two round trips a read.
    """
    at = await _standing(request, as_of, known_at, about)
    async with rows_at(request, at) as conn:
        try:
            yield conn, at
        except reads.UnknownId as error:
            if at.asked is not None and await _known(request, error, at.asked):
                # The log has it; the projection, behind it, has not reached it yet.
                raise _not_projected(at.asked, at.stand.position) from None
            raise ProblemError(404, str(error)) from None


def _known_at(as_of: int | None, known_at: datetime | None) -> tuple[int | None, datetime | None]:
    """known_at, in UTC when it names no offset; a 400 with as_of too."""
    if as_of is not None and known_at is not None:
        raise ProblemError(
            400,
            "give known_at or as_of, not both",
            errors=[
                FieldError("known_at", "", "exclusive with as_of"),
                FieldError("as_of", "", "exclusive with known_at"),
            ],
        )
    if known_at is not None and known_at.tzinfo is None:
        return as_of, known_at.replace(tzinfo=UTC)
    return as_of, known_at


def answer(request: Request[Any, Any, Any], body: Any, at: Reading) -> Response[bytes]:
    position = at.stand.position
    headers = {"Projection-Lag": str(at.stand.lag)} if at.lagging else {}
    if request.headers.get("if-none-match") == f'W/"{position}"':
        return Response(b"", status_code=304, headers={"ETag": f'W/"{position}"', **headers})
    response = json_answer(body, as_of=position)
    response.headers.update(headers)
    return response


@get(
    "/orgs",
    summary="Every org, with its name, kind and parent on a date",
    tags=["orgs"],
    responses=read(Orgs, "Every org the log knows, as of the position."),
)
async def list_orgs(
    request: Request[Any, Any, Any],
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    after: AfterOrg = None,
    limit: Limit = PAGE_DEFAULT,
) -> Response[bytes]:
    asked = on_day(on)
    async with reading(request, as_of, known_at) as (conn, at):
        views, next_after = await reads.orgs(conn, asked, at.stand.position, after=after, limit=limit)
    return answer(request, Orgs(asked, at.stand.position, views, next_after), at)


@get(
    "/orgs/{org_id:str}",
    summary="One org: name, kind and parent on a date",
    tags=["orgs"],
    responses=read(
        answers.OrgView,
        "The org on that date; `exists` is false outside its lifetime.",
        not_found="No org with this id in the log as of the position asked.",
    ),
)
async def get_org(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Response[bytes]:
    async with reading(request, as_of, known_at) as (conn, at):
        view = await reads.org(conn, org_id, on_day(on), at.stand.position)
    return answer(request, view, at)


@get(
    "/orgs/{org_id:str}/roster",
    summary="Who is in an org on a date, and who may be",
    tags=["orgs"],
    responses=read(
        answers.Roster,
        "Members, and possible members where the news is vague.",
        not_found="No org with this id in the log as of the position asked.",
    ),
)
async def get_roster(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    include: Include = None,
    min_status: MinStatus = "reported",
) -> Response[bytes]:
    # One statement resolves the position, checks the org and reads the rows.
    asked = on_day(on)
    suborgs = with_suborgs(include)

    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[answers.Roster | None, reads.Stand]:
        return await reads.roster(
            conn,
            org_id,
            asked,
            as_of,
            known_at,
            include_suborgs=suborgs,
            min_status=min_status,
            exact=exact,
        )

    roster, at = await waiting(request, as_of, known_at, attempt)
    return answer(request, roster, at)


@get(
    "/orgs/{org_id:str}/tree",
    summary="An org and its sub-orgs on a date",
    tags=["orgs"],
    responses=read(
        answers.Tree,
        "The org and its sub-orgs, nested.",
        not_found="No org with this id in the log as of the position asked.",
    ),
)
async def get_tree(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Response[bytes]:
    async with reading(request, as_of, known_at) as (conn, at):
        found = await reads.tree(conn, org_id, on_day(on), at.stand.position)
    return answer(request, found, at)


@get(
    "/people",
    summary="Every person the log knows",
    tags=["people"],
    responses=read(People, "Every person, with names and aliases."),
)
async def list_people(
    request: Request[Any, Any, Any],
    known_at: KnownAt = None,
    as_of: AsOf = None,
    after: AfterPerson = None,
    limit: Limit = PAGE_DEFAULT,
) -> Response[bytes]:
    async with reading(request, as_of, known_at) as (conn, at):
        rows, next_after = await reads.people(conn, at.stand.position, after=after, limit=limit)
    summaries = [PersonSummary(r.person_id, r.name, r.aliases) for r in rows]
    return answer(request, People(at.stand.position, summaries, next_after), at)


@get(
    "/people/{person_id:str}/timeline",
    summary="A career, in start order",
    tags=["people"],
    responses=read(
        answers.Timeline,
        "Every membership, retracted and denied ones flagged by `status`.",
        not_found="No person with this id in the log as of the position asked.",
    ),
)
async def get_timeline(
    request: Request[Any, Any, Any], person_id: PersonId, known_at: KnownAt = None, as_of: AsOf = None
) -> Response[bytes]:
    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[answers.Timeline | None, reads.Stand]:
        return await reads.timeline(conn, person_id, as_of, known_at, exact=exact)

    found, at = await waiting(request, as_of, known_at, attempt)
    return answer(request, found, at)


@get(
    "/flows",
    summary="Moves from one org (and its sub-orgs) to another",
    tags=["flows"],
    responses=read(
        answers.Flows,
        "One move per person and transition.",
        not_found="`from` or `to` is no org in the log as of the position asked.",
    ),
)
async def get_flows(
    request: Request[Any, Any, Any],
    from_: Annotated[str, QueryParameter(name="from", pattern=ev.SLUG_PATTERN)],
    to: Annotated[str, QueryParameter(pattern=ev.SLUG_PATTERN)],
    since: Annotated[
        str | None, QueryParameter(format="date", description="moves on or after this day")
    ] = None,
    until: Annotated[
        str | None, QueryParameter(format="date", description="moves on or before this day")
    ] = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Response[bytes]:
    first, last = day("since", since), day("until", until)
    async with reading(request, as_of, known_at) as (conn, at):
        found = await reads.flows(conn, from_, to, first, last, at.stand.position)
    return answer(request, found, at)


@get(
    "/state",
    summary="Replay: every org with its roster on a date, as known then",
    tags=["state"],
    responses=read(StatePage, "Every org existing that day, with its roster, a page of orgs at a time."),
)
async def get_state(
    request: Request[Any, Any, Any],
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    min_status: MinStatus = "reported",
    after: AfterOrg = None,
    limit: Limit = PAGE_DEFAULT,
) -> Response[bytes]:
    asked = on_day(on)
    async with reading(request, as_of, known_at) as (conn, at):
        found, next_after = await reads.state_page(
            conn, asked, at.stand.position, min_status, after=after, limit=limit
        )
    page = StatePage(on=found.on, as_of=found.as_of, orgs=found.orgs, next=next_after)
    return answer(request, page, at)


@get(
    "/orgs/{org_id:str}/history",
    summary="Everyone ever in an org, over all valid time",
    description="One entry per person, in the order of their first start, with each stint (the entries "
    "of their timeline in this org, without sources: the roster and the timeline have them), and the "
    "org's versions over valid time: where its name or parent changes, and whether it ended (merged or "
    "dissolved). `on` matters only with `include=suborgs`: the sub-orgs are those under the org that day.",
    tags=["orgs"],
    responses=read(
        answers.OrgHistory,
        "Everyone ever in the org, as of the position.",
        not_found="No org with this id in the log as of the position asked.",
    ),
)
async def get_org_history(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    include: Include = None,
) -> Response[bytes]:
    """The read behind the org page's picture (service/ui): each person's stints in the org
    (and, with `include=suborgs`, in the orgs under it on `on`), as their timelines give them
    but without sources, and the org's versions (names, parents) over time."""
    asked = on_day(on)
    suborgs = with_suborgs(include)
    async with reading(request, as_of, known_at, ("org", org_id)) as (conn, at):
        found = await reads.org_history(conn, org_id, asked, at.stand.position, include_suborgs=suborgs)
    return answer(request, found, at)


# What every read shares, said once: public unless HIRING_NEWS_READ_KEY_REQUIRED (the
# guard enforces it), the position the answer reflects as an ETag, and the lag header.
router = Router(
    path="/",
    route_handlers=[
        list_orgs,
        get_org,
        get_roster,
        get_tree,
        get_org_history,
        list_people,
        get_timeline,
        get_flows,
        get_state,
    ],
    security=READ_SECURITY,
    response_headers=[ETAG, PROJECTION_LAG],
    tags=["reads"],
)
