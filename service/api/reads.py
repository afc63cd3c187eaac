"""The read endpoints: rosters, orgs, trees, careers, flows and replay, on any date as known at any time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.params import PathParameter, QueryParameter

from service import answers, reads
from service.api.common import json_answer, read_pool
from service.openapi import ETAG, READ_SECURITY, read
from service.problems import FieldError, ProblemError
from service.store import Conn

On = Annotated[date | None, QueryParameter(description="the valid date, YYYY-MM-DD (default: today, UTC)")]
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
OrgId = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", description="an org id (slug)")]
PersonId = Annotated[
    str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", description="a person id (slug)")
]


class PersonSummary(msgspec.Struct, frozen=True):
    person_id: str
    name: str | None
    aliases: tuple[str, ...]


class People(msgspec.Struct, frozen=True):
    as_of: int
    people: list[PersonSummary]


class Orgs(msgspec.Struct, frozen=True):
    on: date
    as_of: int
    orgs: list[answers.OrgView]


def _today() -> date:
    return datetime.now(UTC).date()


@asynccontextmanager
async def reading(
    request: Request[Any, Any, Any],
    as_of: int | None,
    known_at: datetime | None,
    about: tuple[str, str] | None = None,
) -> AsyncIterator[tuple[Conn, int]]:
    """A connection and the log position the answer reflects (404 if `about` is unknown then).

    No transaction: every row read is selected by `positions @> P` with P at most the
    head read first, and rows that held at P never change, so statements read at
    different moments still agree. That saves two round trips a read.
    """
    known_at = _known_at(as_of, known_at)
    async with read_pool(request).acquire() as conn:
        try:
            yield conn, await reads.position(conn, as_of, known_at, about)
        except reads.UnknownId as error:
            raise ProblemError(404, str(error)) from None


def _known_at(as_of: int | None, known_at: datetime | None) -> datetime | None:
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
        return known_at.replace(tzinfo=UTC)
    return known_at


def answer(request: Request[Any, Any, Any], body: Any, as_of: int) -> Response[bytes]:
    if request.headers.get("if-none-match") == f'W/"{as_of}"':
        return Response(b"", status_code=304, headers={"ETag": f'W/"{as_of}"'})
    return json_answer(body, as_of=as_of)


@get(
    "/orgs",
    summary="Every org, with its name, kind and parent on a date",
    tags=["orgs"],
    security=READ_SECURITY,
    response_headers=[ETAG],
    responses=read(Orgs, "Every org the log knows, as of the position."),
)
async def list_orgs(
    request: Request[Any, Any, Any], on: On = None, known_at: KnownAt = None, as_of: AsOf = None
) -> Response[bytes]:
    day = on or _today()
    async with reading(request, as_of, known_at) as (conn, position):
        views = await reads.orgs(conn, day, position)
    return answer(request, Orgs(day, position, views), position)


@get(
    "/orgs/{org_id:str}",
    summary="One org: name, kind and parent on a date",
    tags=["orgs"],
    security=READ_SECURITY,
    response_headers=[ETAG],
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
    async with reading(request, as_of, known_at) as (conn, position):
        view = await reads.org(conn, org_id, on or _today(), position)
    return answer(request, view, position)


@get(
    "/orgs/{org_id:str}/roster",
    summary="Who is in an org on a date, and who may be",
    tags=["orgs"],
    security=READ_SECURITY,
    response_headers=[ETAG],
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
    include: Annotated[
        Literal["suborgs"] | None,
        QueryParameter(description="suborgs: add the members of sub-orgs on that date"),
    ] = None,
    min_status: MinStatus = "reported",
) -> Response[bytes]:
    # One statement resolves the position, checks the org and reads the rows.
    when = _known_at(as_of, known_at)
    async with read_pool(request).acquire() as conn:
        try:
            roster = await reads.roster(
                conn,
                org_id,
                on or _today(),
                as_of,
                when,
                include_suborgs=include == "suborgs",
                min_status=min_status,
            )
        except reads.UnknownId as error:
            raise ProblemError(404, str(error)) from None
    return answer(request, roster, roster.as_of)


@get(
    "/orgs/{org_id:str}/tree",
    summary="An org and its sub-orgs on a date",
    tags=["orgs"],
    security=READ_SECURITY,
    response_headers=[ETAG],
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
    async with reading(request, as_of, known_at) as (conn, position):
        found = await reads.tree(conn, org_id, on or _today(), position)
    return answer(request, found, position)


@get(
    "/people",
    summary="Every person the log knows",
    tags=["people"],
    security=READ_SECURITY,
    response_headers=[ETAG],
    responses=read(People, "Every person, with names and aliases."),
)
async def list_people(
    request: Request[Any, Any, Any], known_at: KnownAt = None, as_of: AsOf = None
) -> Response[bytes]:
    async with reading(request, as_of, known_at) as (conn, position):
        rows = await reads.people(conn, position)
    summaries = [PersonSummary(r.person_id, r.name, r.aliases) for r in rows]
    return answer(request, People(position, summaries), position)


@get(
    "/people/{person_id:str}/timeline",
    summary="A career, in start order",
    tags=["people"],
    security=READ_SECURITY,
    response_headers=[ETAG],
    responses=read(
        answers.Timeline,
        "Every membership, retracted and denied ones flagged by `status`.",
        not_found="No person with this id in the log as of the position asked.",
    ),
)
async def get_timeline(
    request: Request[Any, Any, Any], person_id: PersonId, known_at: KnownAt = None, as_of: AsOf = None
) -> Response[bytes]:
    when = _known_at(as_of, known_at)
    async with read_pool(request).acquire() as conn:
        try:
            found = await reads.timeline(conn, person_id, as_of, when)
        except reads.UnknownId as error:
            raise ProblemError(404, str(error)) from None
    return answer(request, found, found.as_of)


@get(
    "/flows",
    summary="Moves from one org (and its sub-orgs) to another",
    tags=["flows"],
    security=READ_SECURITY,
    response_headers=[ETAG],
    responses=read(
        answers.Flows,
        "One move per person and transition.",
        not_found="`from` or `to` is no org in the log as of the position asked.",
    ),
)
async def get_flows(
    request: Request[Any, Any, Any],
    from_: Annotated[str, QueryParameter(name="from", pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")],
    to: Annotated[str, QueryParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")],
    since: Annotated[date | None, QueryParameter(description="moves on or after this day")] = None,
    until: Annotated[date | None, QueryParameter(description="moves on or before this day")] = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Response[bytes]:
    async with reading(request, as_of, known_at) as (conn, position):
        found = await reads.flows(conn, from_, to, since, until, position)
    return answer(request, found, position)


@get(
    "/state",
    summary="Replay: every org with its roster on a date, as known then",
    tags=["state"],
    security=READ_SECURITY,
    response_headers=[ETAG],
    responses=read(answers.StateView, "Every org existing that day, with its roster."),
)
async def get_state(
    request: Request[Any, Any, Any],
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    min_status: MinStatus = "reported",
) -> Response[bytes]:
    async with reading(request, as_of, known_at) as (conn, position):
        found = await reads.state(conn, on or _today(), position, min_status)
    return answer(request, found, position)
