"""The read side: rows from the bitemporal cache, answered by the fold's own rules.

Every question is asked "on D as of P": the SQL fetches the rows that held at position
P and speak of day D (one GiST probe per org or person), and `service.answers` turns
them into the answer, with the very functions that answer the pure fold. That is why
the SQL answer equals the fold's, which the property tests check.

Rosters and careers, the reads asked most, are one statement each: position, id check
and rows in one round trip, the rows as JSON for one decode, and their sources passed
into the answer as the cache stores them, never decoded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final

import asyncpg
import msgspec

from service import answers
from service.fold import MembershipRow, MoveRow, OrgRow, PersonRow, SourceRef
from service.sql import QUERIES as Q
from service.store import Conn

_sources: Final = msgspec.json.Decoder(tuple[SourceRef, ...])
_aliases: Final = msgspec.json.Decoder(tuple[str, ...])


class UnknownId(Exception):
    """The log had not mentioned this id as of the position asked."""

    def __init__(self, kind: str, ident: str, as_of: int) -> None:
        super().__init__(f"no {kind} {ident!r} in the log as of position {as_of}")


# ---- rows from records ---------------------------------------------------------------------


def membership(record: asyncpg.Record | Mapping[str, Any]) -> MembershipRow:
    values = dict(record.items())
    values["sources"] = _sources.decode(values["sources"])
    return MembershipRow(**values)


def org_row(record: asyncpg.Record) -> OrgRow:
    return OrgRow(**dict(record.items()))


def person_row(record: asyncpg.Record) -> PersonRow:
    return PersonRow(record["person_id"], record["name"], _aliases.decode(record["aliases"]))


def move_row(record: asyncpg.Record) -> MoveRow:
    values = dict(record.items())
    values["sources"] = _sources.decode(values["sources"])
    return MoveRow(**values)


# ---- positions -----------------------------------------------------------------------------


def _asking(statement: str) -> str:
    """A statement with the CTEs that say which position it reads at (`asked` in reads.sql)."""
    return statement.replace("WITH :asked", "WITH " + Q["asked"])


_READ_POSITION: Final = _asking(Q["read_position"])
_TIMELINE: Final = _asking(Q["timeline"])


async def position(
    conn: Conn, as_of: int | None, known_at: Any | None, about: tuple[str, str] | None = None
) -> int:
    """The log position a read reflects: as_of (capped at the head), known_at, or the head.

    With `about` (kind, id), also refuse an id the log had not mentioned by then, in the
    same round trip.
    """
    kind, ident = about if about is not None else (None, None)
    row = await conn.fetchrow(_READ_POSITION, ident, as_of, known_at, kind)
    assert row is not None
    if not row["known"]:
        raise UnknownId(str(kind), str(ident), row["position"])
    return int(row["position"])


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


class Member(msgspec.Struct, array_like=True, gc=False):
    """A membership row as the roster statement returns it: what the roster rules read
    (`answers.Membership`), the person's name as of P, and the sources as stored, which
    arrive apart and are set once decoded."""

    person_id: str
    org_id: str
    role: str
    title: str | None
    start_value: str | None
    start_earliest: date | None
    start_latest: date | None
    ended: bool
    end_earliest: date | None
    end_latest: date | None
    seg_from: date | None
    seg_until: date | None
    status: str
    name: str | None
    sources: msgspec.Raw = msgspec.Raw(b"[]")


_org_rows: Final = msgspec.json.Decoder(list[OrgRow])
_members: Final = msgspec.json.Decoder(list[Member])
_ROSTER: Final = {
    include: _asking(Q["roster"]).replace("(:orgs)", f"({Q['roster_subtree' if include else 'roster_org']})")
    for include in (False, True)
}


async def roster(
    conn: Conn,
    org_id: str,
    on: date,
    as_of: int | None,
    known_at: datetime | None = None,
    *,
    include_suborgs: bool,
    min_status: answers.MinStatus,
) -> answers.Roster:
    """Who is in an org on a day, as of `as_of` (capped at the head), or of the last
    position recorded by `known_at`, or of the head: one statement, one round trip.

    The sources are never decoded: each entry carries them as stored, into the answer.
    """
    record = await conn.fetchrow(_ROSTER[include_suborgs], org_id, as_of, known_at, on)
    assert record is not None
    position, known, org_rows, members, sources = record
    if not known:
        raise UnknownId("org", org_id, position)
    org_ids = answers.roster_orgs(org_id, on, _org_rows.decode(org_rows), include_suborgs)
    rows = _members.decode(members)
    for row, stored in zip(rows, sources, strict=True):
        row.sources = msgspec.Raw(stored)
    names = {row.person_id: row.name for row in rows}
    return answers.roster(org_id, on, min_status, rows, names, org_ids, position)


# An org the log had not mentioned by P has no rows as of P, so `org` and `tree` need no
# check of their own: no rows is no answer, the 404.


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


class Stint(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A membership row as the timeline statement returns it (`answers.Career`), with its
    sources as stored."""

    person_id: str
    org_id: str
    role: str
    title: str | None
    start_value: str | None
    start_earliest: date | None
    start_latest: date | None
    ended: bool
    end_value: str | None
    end_earliest: date | None
    end_latest: date | None
    seg_from: date | None
    seg_until: date | None
    status: str
    fact_key: str
    sources: msgspec.Raw


_stints: Final = msgspec.json.Decoder(list[Stint])


async def timeline(
    conn: Conn, person_id: str, as_of: int | None, known_at: datetime | None = None
) -> answers.Timeline:
    """A career as of a position (as for `roster`): one statement, sources never decoded."""
    record = await conn.fetchrow(_TIMELINE, person_id, as_of, known_at)
    assert record is not None
    position, known, name, rows = record
    if not known:
        raise UnknownId("person", person_id, position)
    return answers.timeline(person_id, name, _stints.decode(rows), position)


async def flows(
    conn: Conn, from_id: str, to_id: str, since: date | None, until: date | None, as_of: int
) -> answers.Flows:
    await _require(conn, "org", [from_id, to_id], as_of)
    orgs = [org_row(r) for r in await conn.fetch(Q["all_org_rows"], as_of)]
    moves = [move_row(r) for r in await conn.fetch(Q["all_move_rows"], as_of)]
    return answers.flows(from_id, to_id, since, until, moves, orgs, as_of)


async def state(conn: Conn, on: date, as_of: int, min_status: answers.MinStatus) -> answers.StateView:
    orgs = [org_row(r) for r in await conn.fetch(Q["all_org_rows"], as_of)]
    rows = [membership(r) for r in await conn.fetch(Q["all_membership_rows_on"], as_of, on)]
    people = await _people(conn, (r.person_id for r in rows), as_of)
    return answers.state_view(on, min_status, orgs, rows, people, as_of)


async def people(conn: Conn, as_of: int) -> list[PersonRow]:
    return [person_row(r) for r in await conn.fetch(Q["all_person_rows"], as_of)]


async def orgs(conn: Conn, on: date, as_of: int) -> list[answers.OrgView]:
    by_org: dict[str, list[OrgRow]] = {}
    for record in await conn.fetch(Q["all_org_rows"], as_of):
        row = org_row(record)
        by_org.setdefault(row.org_id, []).append(row)
    views = (answers.org_view(org_id, on, rows, as_of) for org_id, rows in sorted(by_org.items()))
    return [v for v in views if v is not None]
