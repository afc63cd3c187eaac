"""The pages: views of the read endpoints, rendered on the server.

Each page takes the parameters of the read it shows (`on`, `known_at` or `as_of`,
`include`, `min_status`), asks the very read functions the JSON endpoints call
(`service.reads`, through `service.api.reads.waiting`, so a page waits for the projector
exactly as its endpoint does) and renders the answers: nothing here decides who is a
member or what a career was. The first read fixes the position (`as_of`) the page
stands at; the page's other reads ask for exactly that position, so everything on a page
is as the log stood at one moment, which the page says.

The pages work without JavaScript: every control is a GET form. static/site.js only
makes them livelier (the replay redraws as a control moves, the feed follows the live
stream). Under the app's Content-Security-Policy: no inline script or style, nothing
from elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, cast
from urllib.parse import urlencode

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, Router, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from markupsafe import Markup

from service import answers, reads, store
from service.api.common import pool
from service.api.contract import READ_SECURITY
from service.api.events import parse_types
from service.api.reads import (
    AsOf,
    KnownAt,
    MinStatus,
    On,
    OrgId,
    PersonId,
    Reading,
    _today,
    on_day,
    rows_at,
    waiting,
)
from service.fold import SOURCES, SourceRef
from service.problems import ProblemError
from service.store import Conn
from service.ui import pictures

T = TypeVar("T")
HERE: Final = Path(__file__).resolve().parent
# Positions labelled on a replay slider (besides the one shown).
MARKS: Final = 8
FEED_EVENTS: Final = 30
LISTED: Final = 200

Include = Annotated[
    Literal["suborgs"] | None,
    QueryParameter(description="suborgs: add the members of sub-orgs on that date"),
]
Search = Annotated[str | None, QueryParameter(max_length=200, description="a name, alias or id to find")]


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        # The templates ship with the package: never stat them again on each render.
        auto_reload=False,
    )
    env.filters["when"] = pictures.describe
    env.filters["svg"] = Markup
    env.filters["decoded"] = sources
    env.globals["link"] = link
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def sources(found: object) -> tuple[SourceRef, ...]:
    """An answer's sources: rows carry them as stored JSON (msgspec.Raw), decoded here to show."""
    if isinstance(found, msgspec.Raw):
        return SOURCES.decode(found)
    return tuple(cast("Iterable[SourceRef]", found))


def link(path: str, **params: object) -> str:
    """A page's address with the parameters that are set (None and '' left out)."""
    query = {k.rstrip("_"): v for k, v in params.items() if v is not None and v != ""}
    return path + ("?" + urlencode(query) if query else "")


async def _on_own(request: Request[Any, Any, Any], at: Reading, read: Callable[[Conn], Awaitable[T]]) -> T:
    """A read on a pooled connection of its own, so that a page's reads run side by side,
    on a server that has the position `at` (`rows_at`)."""
    async with rows_at(request, at) as conn:
        return await read(conn)


def _stood(at: Reading) -> dict[str, Any]:
    return {"position": at.stand.position, "head": at.stand.head, "lagging": at.lagging, "lag": at.stand.lag}


async def _replay(conn: Conn, kind: str, ident: str, at: Reading) -> dict[str, Any]:
    """The slider over the log's positions: from where the log first mentions the id to
    the head, labelled with when the log recorded them."""
    first, marks = await reads.replay_marks(conn, kind, ident, at.stand.head, at.stand.position, MARKS)
    labels = [(p, _recorded(t)) for p, t in marks]
    return {"first": first, "marks": labels, "recorded": dict(labels).get(at.stand.position, "")}


def _recorded(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- pages --------------------------------------------------------------------------------


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/ui")


@get("/ui", summary="Home: orgs and people", security=READ_SECURITY)
async def home(
    request: Request[Any, Any, Any],
    q: Search = None,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Template:
    """The first orgs (as on `on`) and people, or those whose name, alias or id holds `q`:
    the same reads as GET /orgs and GET /people, a search by SQL for `q`."""
    day = on_day(on)
    needle = (q or "").strip()

    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[Any, reads.Stand]:
        stand = await reads.stand(conn, as_of, known_at, exact=exact)
        if stand.behind:
            return None, stand
        at = stand.position
        if needle:
            orgs = await reads.orgs_matching(conn, needle, day, at, LISTED + 1)
            people = await reads.people_matching(conn, needle, at, LISTED + 1)
            counts = (len(orgs), len(people))
        else:
            orgs, _ = await reads.orgs(conn, day, at, limit=LISTED + 1)
            people, _ = await reads.people(conn, at, limit=LISTED + 1)
            counts = (await reads.count(conn, "org", at), await reads.count(conn, "person", at))
        return (orgs, people, counts), stand

    (orgs, people, (orgs_count, people_count)), at = await waiting(request, as_of, known_at, attempt)
    existing = [o for o in orgs if o.exists]
    return Template(
        "home.html",
        context={
            "q": q or "",
            "on": day,
            "stood": _stood(at),
            "orgs": existing[:LISTED],
            "orgs_count": orgs_count,
            "people": people[:LISTED],
            "people_count": people_count,
            "listed": LISTED,
            "org_names": {o.org_id: o.name for o in orgs},
        },
    )


@get("/ui/orgs/{org_id:str}", summary="An org: its roster on a date and its history", security=READ_SECURITY)
async def org_page(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
    include: Include = None,
    min_status: MinStatus = "reported",
) -> Template:
    day = on_day(on)
    suborgs = include == "suborgs"

    # The roster exactly as GET /orgs/{id}/roster answers it; it fixes the position.
    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[answers.Roster | None, reads.Stand]:
        return await reads.roster(
            conn, org_id, day, as_of, known_at, include_suborgs=suborgs, min_status=min_status, exact=exact
        )

    roster, at = await waiting(request, as_of, known_at, attempt)
    position = at.stand.position
    # The other reads ask for that very position, side by side, a connection each.
    view, tree, history, replay = await asyncio.gather(
        _on_own(request, at, lambda conn: reads.org(conn, org_id, day, position)),
        _on_own(request, at, lambda conn: reads.tree(conn, org_id, day, position)),
        _on_own(
            request, at, lambda conn: reads.org_history(conn, org_id, day, position, include_suborgs=suborgs)
        ),
        _on_own(request, at, lambda conn: _replay(conn, "org", org_id, at)),
    )
    # The parents its versions name (most orgs have one), for the reorg marks.
    parent_ids = list(dict.fromkeys(v.parent_id for v in history.versions if v.parent_id))
    parent_views = await asyncio.gather(
        *(
            _on_own(request, at, functools.partial(reads.org, org_id=p, on=day, as_of=position))
            for p in parent_ids
        )
    )
    parents: dict[str, str | None] = {v.org_id: v.name for v in parent_views}
    parent = view.parent_id and {"org_id": view.parent_id, "name": parents.get(view.parent_id)}
    names = _tree_names(tree)
    here = {
        "org_id": org_id,
        "on": day,
        "as_of": position,
        "include": include,
        "min_status": _unless(min_status, "reported"),
    }
    first = [e.person_id for e in roster.members + roster.possible]
    picture = pictures.org_picture(
        history,
        day,
        link=link("", on=day, as_of=position),
        parent_names=parents,
        org_names=names,
        first=first,
    )
    return Template(
        "org.html",
        context={
            "org": view,
            "parent": parent,
            "roster": roster,
            "tree": tree,
            "history": history,
            "marks": pictures.org_marks(history, parents),
            "picture": picture,
            "names": names,
            "on": day,
            "stood": _stood(at),
            "replay": replay,
            "here": here,
            # The query the page's links to people and orgs carry: the same date and position.
            "qs": link("", on=day, as_of=position),
            "include": include,
            "min_status": min_status,
        },
    )


@get("/ui/orgs/{org_id:str}/tree", summary="An org's tree on a date", security=READ_SECURITY)
async def tree_page(
    request: Request[Any, Any, Any],
    org_id: OrgId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Template:
    day = on_day(on)

    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[Any, reads.Stand]:
        stand = await reads.stand(conn, as_of, known_at, ("org", org_id), exact=exact)
        if stand.behind:
            return None, stand
        return await reads.tree(conn, org_id, day, stand.position), stand

    tree, at = await waiting(request, as_of, known_at, attempt)
    async with rows_at(request, at) as conn:
        replay = await _replay(conn, "org", org_id, at)
    return Template(
        "tree.html",
        context={
            "tree": tree,
            "on": day,
            "stood": _stood(at),
            "replay": replay,
            "here": {"on": day, "as_of": at.stand.position},
        },
    )


@get("/ui/people/{person_id:str}", summary="A career", security=READ_SECURITY)
async def person_page(
    request: Request[Any, Any, Any],
    person_id: PersonId,
    on: On = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Template:
    day = on_day(on)

    # The career exactly as GET /people/{id}/timeline answers it.
    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[answers.Timeline | None, reads.Stand]:
        return await reads.timeline(conn, person_id, as_of, known_at, exact=exact)

    timeline, at = await waiting(request, as_of, known_at, attempt)
    position = at.stand.position
    async with rows_at(request, at) as conn:
        person = await reads.person(conn, person_id, position)
        org_names = {}
        for org_id in dict.fromkeys(m.org_id for m in timeline.memberships):
            org_names[org_id] = (await reads.org(conn, org_id, day, position)).name
        replay = await _replay(conn, "person", person_id, at)
    picture = pictures.career_picture(
        timeline, day, org_names=org_names, link=link("", on=day, as_of=position)
    )
    return Template(
        "person.html",
        context={
            "timeline": timeline,
            "aliases": person.aliases if person is not None else (),
            "org_names": org_names,
            "picture": picture,
            "on": day,
            "stood": _stood(at),
            "replay": replay,
            "here": {"on": day, "as_of": position},
        },
    )


@get("/ui/flows", summary="Moves from one org to another", security=READ_SECURITY)
async def flows_page(
    request: Request[Any, Any, Any],
    from_: Annotated[
        str | None, QueryParameter(name="from", pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", required=False)
    ] = None,
    to: Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$", required=False)] = None,
    since: Annotated[date | None, QueryParameter(description="moves on or after this day")] = None,
    until: Annotated[date | None, QueryParameter(description="moves on or before this day")] = None,
    known_at: KnownAt = None,
    as_of: AsOf = None,
) -> Template:
    async def attempt(
        conn: Conn, as_of: int | None, known_at: datetime | None, exact: bool
    ) -> tuple[Any, reads.Stand]:
        stand = await reads.stand(conn, as_of, known_at, exact=exact)
        if stand.behind:
            return None, stand
        found = None
        if from_ and to:
            found = await reads.flows(conn, from_, to, since, until, stand.position)
        named = sorted(
            {i for i in (from_, to) if i}
            | {o for m in (found.moves if found else []) for o in (m.from_org_id, m.to_org_id)}
        )
        return (found, await reads.org_views(conn, named, _today(), stand.position)), stand

    (flows, orgs), at = await waiting(request, as_of, known_at, attempt)
    names = {o.org_id: o.name for o in orgs}
    return Template(
        "flows.html",
        context={
            "flows": flows,
            "orgs": orgs,
            "names": names,
            "source": from_ or "",
            "target": to or "",
            "since": since,
            "until": until,
            "picture": pictures.flows_picture(flows, names) if flows is not None else "",
            "stood": _stood(at),
            "here": {"as_of": at.stand.position},
        },
    )


@get("/ui/feed", summary="The latest events, live", security=READ_SECURITY)
async def feed_page(
    request: Request[Any, Any, Any],
    type_: Annotated[str | None, QueryParameter(name="type", max_length=1000)] = None,
) -> Template:
    """The last events of the log (as GET /events pages it), newest first; site.js then
    follows GET /events/stream from the head shown."""
    types = parse_types(type_)
    async with pool(request).acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        head = await store.head(conn)
        rows = await store.page(conn, max(0, head - FEED_EVENTS), FEED_EVENTS, types, upto=head)
    events = [store.stored_event(r) for r in reversed(rows)]
    return Template(
        "feed.html",
        context={
            "events": [_feed_item(e) for e in events],
            "head": head,
            "type": type_ or "",
            "stream": link("/events/stream", after=head, type_=type_),
        },
    )


def _feed_item(event: store.StoredEvent) -> dict[str, Any]:
    data = msgspec.json.decode(event.data)
    source = msgspec.json.decode(event.source) or {}  # `null` for an event without a source
    return {
        "position": event.position,
        "type": event.type,
        "status": event.status,
        "recorded_at": event.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
        "person_id": data.get("person_id"),
        "org_id": data.get("org_id"),
        "outlet": source.get("outlet"),
        "url": source.get("url"),
    }


# ---- helpers ------------------------------------------------------------------------------


def _tree_names(tree: answers.Tree) -> dict[str, str | None]:
    names: dict[str, str | None] = {tree.org_id: tree.name}
    stack = list(tree.children)
    while stack:
        node = stack.pop()
        names[node.org_id] = node.name
        stack += node.children
    return names


def _unless(value: str, default: str) -> str | None:
    return None if value == default else value


def on_problem(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Errors on a page are pages too, with the same status as the JSON endpoint's."""
    if isinstance(error, ProblemError):
        status, detail, headers = error.status, error.detail, error.headers
    elif isinstance(error, HTTPException):
        status, detail, headers = error.status_code, error.detail, {}
    else:
        status, detail, headers = 500, "something went wrong on the server", {}
    return Template(
        "error.html",
        context={"status": status, "detail": detail},
        status_code=status,
        headers=headers,
    )


def static_router() -> Router:
    return create_static_files_router(
        path="/ui/static", directories=[HERE / "static"], name="static", include_in_schema=False
    )


def routers() -> list[Any]:
    pages = Router(
        path="/",
        route_handlers=[home, org_page, tree_page, person_page, flows_page, feed_page],
        include_in_schema=False,
        exception_handlers={
            ProblemError: on_problem,
            HTTPException: on_problem,
            NotFoundException: on_problem,
        },
    )
    return [root, pages, static_router()]
