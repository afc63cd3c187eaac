"""Who an event may have changed: the ids whose rows the projector derives again.

The rules (`service.fold`) say what rows are; this module says whose rows an event can
change, so that the projector derives those and no others. It never misses one (the
equivalence tests compare the projection with the fold over the whole log) and may
name too many, which only costs time.

What a claim reaches, by kind:
- a member claim: its person's memberships (and moves, for a claim that reports one);
  a lead-making one (rule 4) also whoever holds the lead in its org on its day (anyone
  who ever made a lead claim there, for a change of status);
- org.added and org.moved: the org's versions and its new parent's, and the people
  under the org who left an org that is or was above it (a left cascades down to
  sub-orgs, rule 2, so where an org sits decides which lefts reach its stints);
- org.merged and org.dissolved: the versions of every org under it (their parent may
  follow a merge) and the people in it or carried into it with a stint open on its day
  or a left from above; and the people under it who left an org above it or merged
  into it;
- org.renamed: the org's versions;
- every event: the people and orgs it gave a name or an alias.

Org events, which reach many people, find them by query, walking the structure the
projector keeps in PostgreSQL (`fold_org_edges`, `fold_org_people`) and the rows the
projection holds; a new lead finds its candidates among the org's own lead claims and
asks the projection's rows only which of them lead that day. People whose rows the
current batch has derived again are checked against the rows held in memory instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from service import events as ev
from service.fold import Applied, MembershipRow, State
from service.fold.claims import FOREVER, NEVER, lead_making
from service.sql import QUERIES as Q
from service.store import Conn


@dataclass(slots=True)
class Dirty:
    careers: set[str] = field(default_factory=set)  # membership rows
    moves: set[str] = field(default_factory=set)  # move rows
    named: set[str] = field(default_factory=set)  # person rows (names and aliases)
    orgs: set[str] = field(default_factory=set)  # org versions


def makes_moves(event: ev.Event) -> bool:
    """Whether a claim (or a change of its status) can change its person's moves (rule 10)."""
    match event:
        case ev.MemberJoined(data=d):
            return d.from_org_id is not None
        case ev.MemberLeft(data=d):
            return d.to_org_id is not None
    return False


STRUCTURAL: Final = (ev.OrgAdded, ev.OrgMoved, ev.OrgMerged, ev.OrgDissolved)


def walks_structure(applied: Applied) -> bool:
    """Whether finding who the event reaches walks the structure in PostgreSQL (which must
    then hold what the batch added to it so far)."""
    claim = applied.claim
    return claim is not None and isinstance(claim.event, STRUCTURAL)


async def reach(
    conn: Conn, state: State, applied: Applied, derived: Mapping[str, list[MembershipRow]]
) -> Dirty:
    """The ids whose rows an applied event may have changed.

    `derived` holds the rows the current batch derived again, by person: their rows in
    the projection's tables are no longer theirs.
    """
    dirty = Dirty(named=set(applied.named_people), orgs=set(applied.named_orgs))
    claim = applied.claim
    if claim is None:
        return dirty
    new = applied.new
    match claim.event:
        case ev.MemberJoined(data=d) | ev.MemberLeft(data=d) | ev.MemberRoleChanged(data=d):
            dirty.careers.add(d.person_id)
            if makes_moves(claim.event):
                dirty.moves.add(d.person_id)
            if lead_making(claim.event):
                dirty.careers |= await _holders(conn, state, d.person_id, d.org_id, claim.at, new, derived)
        case ev.LeadAppointed(data=d):
            dirty.careers.add(d.person_id)
            dirty.careers |= await _holders(conn, state, d.person_id, d.org_id, claim.at, new, derived)
        case ev.OrgAdded(data=d) | ev.OrgMoved(data=d):
            # A parent matters to careers only through a left cascading down from above.
            below, people = await _structure(conn, d.org_id, claim.at, derived)
            dirty.careers |= {p.person_id for p in people if p.left_above}
            dirty.orgs |= {ref.id for ref in ev.referenced_orgs(claim.event)}
        case ev.OrgRenamed():
            dirty.orgs |= {ref.id for ref in ev.referenced_orgs(claim.event)}
        case ev.OrgMerged(data=d) | ev.OrgDissolved(data=d):
            # Stints in the org (and in orgs merged into it, carried over) end, and move
            # on with a merge. A new end only reaches stints open on its day, and stints
            # after it through a left from above that no longer finds the org. Below it,
            # the org's end decides where its sub-orgs sit and whether a left from the org
            # or above still reaches the stints inside them.
            below, people = await _structure(conn, d.org_id, claim.at, derived)
            for p in people:
                if p.in_carried and (not new or p.left_above or p.holds):
                    dirty.careers.add(p.person_id)
                if p.in_rest and (p.left_above or p.left_carried):
                    dirty.careers.add(p.person_id)
            dirty.orgs |= set(below) | {ref.id for ref in ev.referenced_orgs(claim.event)}
    return dirty


async def _holders(
    conn: Conn,
    state: State,
    person_id: str,
    org_id: str,
    day: date,
    new: bool,
    derived: Mapping[str, list[MembershipRow]],
) -> set[str]:
    """Rule 4: whose lead a lead-making claim in an org may end. Only a lead-making claim
    makes a lead, and the org holds every one made in it, so the candidates are known
    without a query; a new claim only ends a lead held on its day, which their rows say
    (in memory for those this batch derived again, else in the projection's tables)."""
    org = state.org(org_id)
    candidates = {c.event.data.person_id for c in (org.leads if org else ())} - {person_id}  # type: ignore[union-attr]
    if not new:
        return candidates
    found = {p for p in candidates if p in derived and may_hold(derived[p], org_id, day, lead=True)}
    stored = sorted(p for p in candidates if p not in derived)
    if stored:
        found |= {r["person_id"] for r in await conn.fetch(Q["reach_holders"], org_id, day, stored)}
    return found


@dataclass(frozen=True, slots=True)
class _Reached:
    person_id: str
    in_carried: bool
    in_rest: bool
    left_above: bool
    left_carried: bool
    holds: bool


async def _structure(
    conn: Conn, org_id: str, day: date, derived: Mapping[str, list[MembershipRow]]
) -> tuple[list[str], list[_Reached]]:
    records = await conn.fetch(Q["reach_structure"], org_id, day, list(derived))
    below: list[str] = list(records[0]["below"]) if records else [org_id]
    people = []
    for r in records:
        if r["person_id"] is None:
            continue
        person_id = r["person_id"]
        holds = may_hold(derived[person_id], org_id, day) if r["unsure"] else r["holds"]
        people.append(
            _Reached(person_id, r["in_carried"], r["in_rest"], r["left_above"], r["left_carried"], holds)
        )
    return below, people


def may_hold(rows: list[MembershipRow], org_id: str, day: date, *, lead: bool = False) -> bool:
    """Whether rows have a stint in the org open on a day, by the stint's point dates as
    the careers compare them; with `lead`, whether they hold its lead then, a lead
    segment counting from its own day (rule 4), the first one from the stint's start."""
    if lead:
        return any(
            row.org_id == org_id
            and row.role == "lead"
            and (_begins(row) if row.seg_from is None else row.seg_from) <= day < _ends(row)
            and (row.seg_until is None or day < row.seg_until)
            for row in rows
        )
    return any(row.org_id == org_id and _begins(row) <= day < _ends(row) for row in rows)


def _begins(row: MembershipRow) -> date:
    return row.start_earliest or row.start_latest or NEVER


def _ends(row: MembershipRow) -> date:
    if not row.ended:
        return FOREVER
    return row.end_earliest or row.end_latest or NEVER
