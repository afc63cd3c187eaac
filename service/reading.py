"""The CLI's reading commands: roster, timeline, tree, flows and events, for people and scripts.

Each command is one GET of the API, asked of a running service (`--url`, through
`service.client`) or, without one, of the app itself, built here on the database
(DATABASE_URL or the embedded default) and asked in process: the very handlers, waits
and JSON the service has. `--json` prints that body exactly; otherwise a table (rich),
with partial dates as people write them (`service.wording`) and the position the answer
reflects.

With no service running, nothing may be projecting the log: the command first brings the
projection up to the head (projecting itself if no projector is active, as `import`
does), so it answers as of every event stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from service import answers, wording
from service.client import AsyncClient, ClientError, Retry
from service.fold import SourceRef
from service.wire import EventPage

LOCAL = "http://hiring-news.local"


@dataclass(frozen=True)
class Question:
    """One GET, and how a person reads its answer."""

    path: str
    params: dict[str, str]
    show: Callable[[bytes], RenderableType]


def when(known_at: str | None, as_of: int | None) -> dict[str, str]:
    return {k: str(v) for k, v in (("known_at", known_at), ("as_of", as_of)) if v is not None}


# ---- asking ----------------------------------------------------------------------------------


async def ask_url(url: str, key: str | None, question: Question, *, retry_for: float) -> bytes:
    async with AsyncClient(url, key, retry=Retry(total=retry_for)) as news:
        return await news.get(question.path, question.params)


async def ask_local(dsn: str, question: Question, **settings: Any) -> bytes:
    """Ask the app itself on `dsn`, once the projection has reached the log's head."""
    from service import database
    from service.app import create_app
    from service.projector import settle
    from service.settings import Settings

    conn = await database.connect(dsn)
    try:
        await database.migrate(conn)
        head = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    finally:
        await conn.close()
    await settle(dsn, head)
    app = create_app(Settings(**settings), dsn, projector=False)
    answer: bytes | ClientError
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar is an ASGI app
        async with AsyncClient(LOCAL, transport=transport) as news:
            try:
                answer = await news.get(question.path, question.params)
            except ClientError as error:
                # Raised out here: inside the lifespan's task group it would come out wrapped.
                answer = error
    if isinstance(answer, ClientError):
        raise answer
    return answer


def show(question: Question, body: bytes, *, as_json: bool, console: Console) -> None:
    if as_json:
        # Exactly the API's JSON, as a script would get it from the service.
        console.file.write(body.decode() + "\n")
    else:
        console.print(question.show(body))


# ---- the questions -----------------------------------------------------------------------------

_roster = msgspec.json.Decoder(answers.Roster)
_timeline = msgspec.json.Decoder(answers.Timeline)
_tree = msgspec.json.Decoder(answers.Tree)
_flows = msgspec.json.Decoder(answers.Flows)
_events = msgspec.json.Decoder(EventPage)


def _as_of(position: int) -> Text:
    return Text(f"as of log position {position}", style="dim")


def _outlets(sources: tuple[SourceRef, ...]) -> str:
    return ", ".join(dict.fromkeys(s.outlet or s.url or s.event_id for s in sources))


def _role(role: str, title: str | None) -> str:
    return role if title is None else f"{role} ({title})"


def _members(title: str, entries: list[answers.RosterEntry], org_id: str) -> RenderableType:
    if not entries:
        return Text(f"{title}: none")
    table = _table(title)
    other_orgs = any(e.org_id != org_id for e in entries)
    for column in ("person", "name", *(["org"] if other_orgs else []), "role", "since", "sources"):
        table.add_column(column)
    for e in entries:
        org = [e.org_id] if other_orgs else []
        table.add_row(
            e.person_id,
            e.name or "",
            *org,
            _role(e.role, e.title),
            wording.partial(e.start),
            _outlets(e.sources),
        )
    return table


def roster(
    org_id: str,
    *,
    on: str | None,
    known_at: str | None,
    as_of: int | None,
    suborgs: bool,
    min_status: str | None,
) -> Question:
    params = {"on": on, "include": "suborgs" if suborgs else None, "min_status": min_status}

    def render(body: bytes) -> RenderableType:
        found = _roster.decode(body)
        heading = Text.assemble(
            (found.org_id, "bold"),
            f"{' and its sub-orgs' if suborgs else ''} on {wording.day(found.on)}, ",
            _as_of(found.as_of),
        )
        return Group(
            heading,
            _members("Members", found.members, found.org_id),
            _members("Possible (the news is too vague to say)", found.possible, found.org_id),
        )

    return Question(f"/orgs/{org_id}/roster", _given(params) | when(known_at, as_of), render)


def timeline(person_id: str, *, known_at: str | None, as_of: int | None) -> Question:
    def render(body: bytes) -> RenderableType:
        found = _timeline.decode(body)
        heading = Text.assemble(
            (found.name or found.person_id, "bold"), f" ({found.person_id}), ", _as_of(found.as_of)
        )
        if not found.memberships:
            return Group(heading, Text("no memberships"))
        table = _table()
        for column in ("org", "role", "from", "until", "status", "sources"):
            table.add_column(column)
        for m in found.memberships:
            until = wording.partial(m.end) if m.end is not None else "still there"
            table.add_row(
                m.org_id,
                _role(m.role, m.title),
                wording.partial(m.start),
                until,
                m.status,
                _outlets(m.sources),
            )
        return Group(heading, table)

    return Question(f"/people/{person_id}/timeline", when(known_at, as_of), render)


def tree(org_id: str, *, on: str | None, known_at: str | None, as_of: int | None) -> Question:
    def render(body: bytes) -> RenderableType:
        found = _tree.decode(body)
        top = Tree(
            Text.assemble((found.name or found.org_id, "bold"), f" ({found.org_id}), ", _as_of(found.as_of))
        )

        def grow(branch: Tree, nodes: list[answers.TreeNode]) -> None:
            for node in nodes:
                grow(branch.add(f"{node.name or node.org_id} ({node.org_id})"), node.children)

        grow(top, found.children)
        return top

    return Question(f"/orgs/{org_id}/tree", _given({"on": on}) | when(known_at, as_of), render)


def flows(
    source: str, target: str, *, since: str | None, until: str | None, known_at: str | None, as_of: int | None
) -> Question:
    params = {"from": source, "to": target, "since": since, "until": until}

    def render(body: bytes) -> RenderableType:
        found = _flows.decode(body)
        moves = "move" if found.count == 1 else "moves"
        heading = Text.assemble(
            (f"{found.count} {moves}", "bold"),
            f" from {found.source} to {found.target}, ",
            _as_of(found.as_of),
        )
        if not found.moves:
            return heading
        table = _table()
        for column in ("person", "from", "to", "when"):
            table.add_column(column)
        for move in found.moves:
            table.add_row(move.person_id, move.from_org_id, move.to_org_id, wording.partial(move.on))
        return Group(heading, table)

    return Question("/flows", _given(params) | when(known_at, as_of), render)


def events(*, after: int, limit: int, types: str | None) -> Question:
    def render(body: bytes) -> RenderableType:
        page = _events.decode(body)
        if not page.events:
            return Text(f"no events after position {after}")
        table = _table()
        for column in ("position", "recorded", "type", "about", "idempotency key"):
            table.add_column(column)
        for event in page.events:
            data = msgspec.json.decode(bytes(event.data))
            about = " ".join(str(data[k]) for k in ("person_id", "org_id", "event_id") if k in data)
            table.add_row(
                str(event.position),
                event.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
                event.type,
                about,
                event.idempotency_key or "",
            )
        more = Text(f"more: hiring-news events --after {page.next}", style="dim") if page.next else Text("")
        return Group(table, more)

    params = {"after": str(after), "limit": str(limit), "type": types}
    return Question("/events", _given(params), render)


def _table(title: str | None = None) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)


def console() -> Console:
    """Tables as wide as they need up to 200 columns when not on a terminal (a pipe, a file)."""
    found = Console(soft_wrap=False)
    return found if found.is_terminal else Console(soft_wrap=False, width=200)


def _given(params: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in params.items() if v is not None}
