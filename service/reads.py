"""The read side: rows from the bitemporal cache, answered by the fold's own rules.

Every question is asked "on D as of P": the SQL fetches the rows that held at position
P and speak of day D (one GiST probe per org or person), and `service.answers` turns
them into the answer, with the very functions that answer the pure fold. That is why
the SQL answer equals the fold's, which the property tests check.

Every read also says where it stands (`Stand`): the position it asked for (`as_of`, the
last one recorded by `known_at`, or the head), and the one it was answered at, which is
lower while the projector has not reached the asked one. The API waits for the
projector then (`service.api.reads`). Rosters and careers, the reads asked most, are one
statement each: where they stand, the id check and the rows in one round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import asyncpg
import msgspec

from service import answers
from service.fold import MembershipRow, MoveRow, OrgRow, PersonRow
from service.sql import QUERIES as Q
from service.store import Conn

_aliases: Final = msgspec.json.Decoder(tuple[str, ...])
_org_rows: Final = msgspec.json.Decoder(list[OrgRow])
_memberships: Final = msgspec.json.Decoder(list[MembershipRow])
_names: Final = msgspec.json.Decoder(dict[str, str | None])


class UnknownId(Exception):
    """The log had not mentioned this id as of the position asked."""

    def __init__(self, kind: str, ident: str, as_of: int) -> None:
        super().__init__(f"no {kind} {ident!r} in the log as of position {as_of}")
        self.kind = kind
        self.ident = ident
        self.as_of = as_of


async def known(conn: Conn, kind: str, ident: str, as_of: int) -> bool:
    """Whether the log had mentioned an id by a position (the registry is written with
    the log, so this holds beyond the projection too)."""
    return ident in await conn.fetchval(Q["entities_known"], kind, [ident], as_of)


@dataclass(frozen=True, slots=True)
class Stand:
    """Where a read stands: the position it asked for, the one it is answered at (the
    projection's, while the projector is behind the asked one), and the log's head."""

    asked: int
    position: int
    head: int

    @property
    def behind(self) -> bool:
        return self.position < self.asked

    @property
    def lag(self) -> int:
        """How many events of the log the answer does not reflect."""
        return self.head - self.position


def _stand(record: asyncpg.Record) -> Stand:
    return Stand(int(record["asked"]), int(record["position"]), int(record["head"]))


# ---- rows from records ---------------------------------------------------------------------


def membership(record: asyncpg.Record) -> MembershipRow:
    values = dict(record.items())
    values["sources"] = msgspec.Raw(values["sources"].encode())
    return MembershipRow(**values)


def org_row(record: asyncpg.Record) -> OrgRow:
    return OrgRow(**dict(record.items()))


def person_row(record: asyncpg.Record) -> PersonRow:
    return PersonRow(record["person_id"], record["name"], _aliases.decode(record["aliases"]))


def move_row(record: asyncpg.Record) -> MoveRow:
    values = dict(record.items())
    values["sources"] = msgspec.Raw(values["sources"].encode())
    return MoveRow(**values)


# ---- positions -----------------------------------------------------------------------------


async def asked(conn: Conn, as_of: int | None, known_at: datetime | None) -> int:
    """The position a read asks for, resolved where the log is written (see `Stand`)."""
    return int(await conn.fetchval(Q["asked"], as_of, known_at))


async def projected(conn: Conn) -> int:
    """The position the projection has reached on this connection's server."""
    return int(await conn.fetchval(Q["checkpoint"]))


async def stand(
    conn: Conn,
    as_of: int | None,
    known_at: datetime | None,
    about: tuple[str, str] | None = None,
    *,
    exact: bool = False,
) -> Stand:
    """Where a read stands (`exact`: as_of is the position asked as it is, not capped at
    this database's head). With `about` (kind, id), also refuse an id the log had not
    mentioned by then (not while the answer is behind: the projector may yet get there)."""
    kind, ident = about if about is not None else (None, None)
    record = await conn.fetchrow(Q["stand"], ident, as_of, known_at, kind, exact)
    assert record is not None
    found = _stand(record)
    if not record["known"] and not found.behind:
        raise UnknownId(str(kind), str(ident), found.position)
    return found


async def _require(conn: Conn, kind: str, idents: list[str], as_of: int) -> None:
    """UnknownId for the first of `idents` the log had not mentioned by `as_of`."""
    known = set(await conn.fetchval(Q["entities_known"], kind, idents, as_of))
    for ident in idents:
        if ident not in known:
            raise UnknownId(kind, ident, as_of)


async def _people(conn: Conn, person_ids: Iterable[str], as_of: int) -> dict[str, PersonRow]:
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    return {r["person_id"]: person_row(r) for r in await conn.fetch(Q["person_rows_of"], ids, as_of)}


# ---- the questions -------------------------------------------------------------------------


async def roster(
    conn: Conn,
    org_id: str,
    on: date,
    as_of: int | None,
    known_at: datetime | None = None,
    *,
    include_suborgs: bool,
    min_status: answers.MinStatus,
    exact: bool = False,
) -> tuple[answers.Roster | None, Stand]:
    """Who is in an org on a day, as of a position (see `Stand`): one statement, one
    round trip. None while behind the position asked.

    The sources are never decoded: each entry carries them as stored, into the answer.
    """
    record = await conn.fetchrow(Q["roster"], org_id, as_of, known_at, on, include_suborgs, exact)
    assert record is not None
    found = _stand(record)
    if found.behind:
        return None, found
    if not record["known"]:
        raise UnknownId("org", org_id, found.position)
    orgs = answers.roster_orgs(org_id, on, _org_rows.decode(record["orgs"]), include_suborgs)
    rows = _memberships.decode(record["members"])
    names = _names.decode(record["names"])
    return answers.roster(org_id, on, min_status, rows, names, orgs, found.position), found


async def timeline(
    conn: Conn, person_id: str, as_of: int | None, known_at: datetime | None = None, *, exact: bool = False
) -> tuple[answers.Timeline | None, Stand]:
    """A career as of a position (as for `roster`): one statement, sources never decoded."""
    record = await conn.fetchrow(Q["timeline"], person_id, as_of, known_at, exact)
    assert record is not None
    found = _stand(record)
    if found.behind:
        return None, found
    if not record["known"]:
        raise UnknownId("person", person_id, found.position)
    rows = _memberships.decode(record["rows"])
    return answers.timeline(person_id, record["name"], rows, found.position), found


# The questions below read at a position that `stand` resolved and the projection has
# reached. An org the log had not mentioned by P has no rows as of P, so `org` and `tree`
# need no check of their own: no rows is no answer, the 404.


async def org(conn: Conn, org_id: str, on: date, as_of: int) -> answers.OrgView:
    rows = [org_row(r) for r in await conn.fetch(Q["org_rows_of"], org_id, as_of)]
    view = answers.org_view(org_id, on, rows, as_of)
    if view is None:
        raise UnknownId("org", org_id, as_of)
    return view


async def tree(conn: Conn, org_id: str, on: date, as_of: int) -> answers.Tree:
    versions = [org_row(r) for r in await conn.fetch(Q["org_rows_of"], org_id, as_of)]
    below = [org_row(r) for r in await conn.fetch(Q["org_subtree_rows"], org_id, as_of, on)]
    found = answers.tree(org_id, on, versions + [r for r in below if r.org_id != org_id], as_of)
    if found is None:
        raise UnknownId("org", org_id, as_of)
    return found


async def flows(
    conn: Conn, from_id: str, to_id: str, since: date | None, until: date | None, as_of: int
) -> answers.Flows:
    await _require(conn, "org", [from_id, to_id], as_of)
    orgs = [org_row(r) for r in await conn.fetch(Q["all_org_rows"], as_of)]
    moves = [move_row(r) for r in await conn.fetch(Q["all_move_rows"], as_of)]
    return answers.flows(from_id, to_id, since, until, moves, orgs, as_of)


async def state(conn: Conn, on: date, as_of: int, min_status: answers.MinStatus) -> answers.StateView:
    """Every org on a day with its roster, at once (the fold's whole answer, for the tests)."""
    orgs = [org_row(r) for r in await conn.fetch(Q["all_org_rows"], as_of)]
    rows = [membership(r) for r in await conn.fetch(Q["all_membership_rows_on"], as_of, on)]
    people = await _people(conn, (r.person_id for r in rows), as_of)
    return answers.state_view(on, min_status, orgs, rows, people, as_of)


# ---- lists, a page at a time -------------------------------------------------------------
#
# Lists are paged by id: a page is the next `limit` ids of the kind that the log had
# mentioned by P (the registry's primary key, a B-tree range scan), then the rows of those
# ids alone. `next` is the last id scanned when the page is full, so a page may hold fewer
# answers than ids (an org with no version on record), never skip one.


async def _ids(
    conn: Conn, kind: str, as_of: int, after: str | None, limit: int
) -> tuple[list[str], str | None]:
    ids = [r["id"] for r in await conn.fetch(Q["entity_page"], kind, as_of, after or "", limit)]
    return ids, (ids[-1] if len(ids) == limit else None)


async def _org_versions(conn: Conn, org_ids: list[str], as_of: int) -> dict[str, list[OrgRow]]:
    by_org: dict[str, list[OrgRow]] = {org_id: [] for org_id in org_ids}
    for record in await conn.fetch(Q["org_rows_of_ids"], org_ids, as_of):
        row = org_row(record)
        by_org[row.org_id].append(row)
    return by_org


async def state_page(
    conn: Conn, on: date, as_of: int, min_status: answers.MinStatus, *, after: str | None, limit: int
) -> tuple[answers.StateView, str | None]:
    """A page of the replay: the orgs after `after` in id order that exist on the day."""
    ids, next_after = await _ids(conn, "org", as_of, after, limit)
    orgs = [row for rows in (await _org_versions(conn, ids, as_of)).values() for row in rows]
    rows = [membership(r) for r in await conn.fetch(Q["membership_rows_of_orgs_on"], ids, as_of, on)]
    people = await _people(conn, (r.person_id for r in rows), as_of)
    return answers.state_view(on, min_status, orgs, rows, people, as_of), next_after


async def people(
    conn: Conn, as_of: int, *, after: str | None = None, limit: int = 1000
) -> tuple[list[PersonRow], str | None]:
    ids, next_after = await _ids(conn, "person", as_of, after, limit)
    found = await _people(conn, ids, as_of)
    return [found[i] for i in ids if i in found], next_after


async def orgs(
    conn: Conn, on: date, as_of: int, *, after: str | None = None, limit: int = 1000
) -> tuple[list[answers.OrgView], str | None]:
    ids, next_after = await _ids(conn, "org", as_of, after, limit)
    views = (
        answers.org_view(org_id, on, rows, as_of)
        for org_id, rows in (await _org_versions(conn, ids, as_of)).items()
    )
    return [v for v in views if v is not None], next_after


async def count(conn: Conn, kind: str, as_of: int) -> int:
    """How many people or orgs the log had mentioned by a position."""
    return int(await conn.fetchval(Q["entity_count"], kind, as_of))


def _pattern(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def people_matching(conn: Conn, needle: str, as_of: int, limit: int) -> list[PersonRow]:
    """People whose id, name or an alias holds `needle`, as of a position (a search box)."""
    return [person_row(r) for r in await conn.fetch(Q["people_matching"], _pattern(needle), as_of, limit)]


async def org_views(conn: Conn, org_ids: list[str], on: date, as_of: int) -> list[answers.OrgView]:
    """These orgs' views on a day, as of a position, in the order given."""
    versions = await _org_versions(conn, org_ids, as_of)
    views = (answers.org_view(org_id, on, versions[org_id], as_of) for org_id in org_ids)
    return [v for v in views if v is not None]


async def orgs_matching(conn: Conn, needle: str, on: date, as_of: int, limit: int) -> list[answers.OrgView]:
    """Orgs whose id or name holds `needle`, as of a position (a search box)."""
    ids = [r["org_id"] for r in await conn.fetch(Q["orgs_matching"], _pattern(needle), as_of, limit)]
    return await org_views(conn, ids, on, as_of)


async def org_history(
    conn: Conn, org_id: str, on: date, as_of: int, *, include_suborgs: bool
) -> answers.OrgHistory:
    """Everyone ever in an org (with its sub-orgs on `on`, when asked), over all valid time,
    as of a position the projection has reached: one statement."""
    record = await conn.fetchrow(Q["org_history"], org_id, as_of, on, include_suborgs)
    assert record is not None
    found = answers.org_history(
        org_id,
        on,
        _org_rows.decode(record["versions"]),
        _memberships.decode(record["rows"]),
        _names.decode(record["names"]),
        as_of,
    )
    if found is None:
        raise UnknownId("org", org_id, as_of)
    return found


async def replay_marks(
    conn: Conn, kind: str, ident: str, head: int, position: int, steps: int
) -> tuple[int, list[tuple[int, datetime]]]:
    """A replay's range and labels: the first position at which the log mentions the id,
    and when the log recorded the events at `steps` + 1 positions from there to `head`
    and at `position`."""
    rows = await conn.fetch(Q["replay_marks"], kind, ident, head, position, steps)
    first = int(rows[0]["first"]) if rows else 1
    return first, [(int(r["position"]), r["recorded_at"]) for r in rows if r["position"] is not None]


async def person(conn: Conn, person_id: str, as_of: int) -> PersonRow | None:
    """A person's name and aliases as of a position (as GET /people lists them)."""
    return (await _people(conn, [person_id], as_of)).get(person_id)
