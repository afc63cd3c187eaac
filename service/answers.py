"""The questions readers ask, answered from rows alone.

Every function here takes the rows the fold produces (`service.fold`), never the State,
because the SQL cache fetches the same rows for a position and calls these same
functions: the rules of what makes a member, a possible member, a sub-org or a move live
here once. (`tests/reference.py` asks them of a whole State: the reference the SQL side
is compared with.)

Choices made here:
- A timeline has one entry per stint, with the role and title it holds last; its `roles`
  list gives every role segment.
- A known org asked about on a day it does not exist has an empty roster and subtree;
  its view is its nearest version with `exists` false.
- A roster lists a person at most once per org: where several of their rows hold that
  day (a join reported under two roles, say), the surest one (member before possible),
  then the lead role, then the latest start.
- In flows, an org always counts as inside its own subtree, even on a day it did not
  exist, so moves out of an org added later in the log still count as leaving it. A move
  counts when its two orgs sit in the two subtrees on some day its date allows (the
  subtrees change only where an org version begins or ends, so those days are tried).

Pure: standard library and msgspec only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import date
from typing import Final, Literal, TypeAlias, cast

import msgspec

from service.dates import DayRange, point
from service.events import STATUS_RANK
from service.fold import DEAD, MembershipRow, MoveRow, OrgRow, PersonRow, SourceRef, version_on

Standing: TypeAlias = Literal["member", "possible"]
MinStatus: TypeAlias = Literal["rumor", "reported", "confirmed"]


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every answer shape."""


# Rosters make a PartialDate and a RosterEntry per member: leaves holding no cycles, which
# the garbage collector need not track (as fold.SourceRef).
class PartialDate(Answer, frozen=True, kw_only=True, gc=False):
    value: str | None
    earliest: date | None
    latest: date | None


class RosterEntry(Answer, frozen=True, kw_only=True, gc=False):
    person_id: str
    name: str | None
    org_id: str
    role: str
    title: str | None
    start: PartialDate
    status: str
    sources: tuple[SourceRef, ...]


class Roster(Answer, frozen=True, kw_only=True):
    org_id: str
    on: date
    as_of: int
    members: list[RosterEntry]
    possible: list[RosterEntry]


class OrgView(Answer, frozen=True, kw_only=True):
    org_id: str
    name: str | None
    kind: str | None
    parent_id: str | None
    as_of: int
    exists: bool


class TreeNode(Answer, frozen=True, kw_only=True):
    org_id: str
    name: str | None
    children: list[TreeNode]


class Tree(Answer, frozen=True, kw_only=True):
    org_id: str
    name: str | None
    as_of: int
    children: list[TreeNode]


class RoleSpan(Answer, frozen=True, kw_only=True):
    role: str
    title: str | None
    since: date | None = msgspec.field(name="from")
    until: date | None


class TimelineEntry(Answer, frozen=True, kw_only=True):
    org_id: str
    role: str
    title: str | None
    start: PartialDate
    end: PartialDate | None
    status: str
    sources: tuple[SourceRef, ...]
    roles: list[RoleSpan]


class Timeline(Answer, frozen=True, kw_only=True):
    person_id: str
    name: str | None
    as_of: int
    memberships: list[TimelineEntry]


class Move(Answer, frozen=True, kw_only=True):
    person_id: str
    from_org_id: str
    to_org_id: str
    on: PartialDate


class Flows(Answer, frozen=True, kw_only=True):
    source: str = msgspec.field(name="from")
    target: str = msgspec.field(name="to")
    as_of: int
    count: int
    moves: list[Move]


class OrgState(Answer, frozen=True, kw_only=True):
    org_id: str
    name: str | None
    kind: str | None
    parent_id: str | None
    members: list[RosterEntry]
    possible: list[RosterEntry]


class StateView(Answer, frozen=True, kw_only=True):
    on: date
    as_of: int
    orgs: list[OrgState]


_FIRST: Final = date.min
_LAST: Final = date.max
_encoder: Final = msgspec.json.Encoder()


# ---- memberships --------------------------------------------------------------------------


def classify(row: MembershipRow, on: date) -> Standing | None:
    """Member if s2 <= t < e1; possible if s1 <= t < e2 and not member.

    An open start bound is infinite on its side, so a start with no latest day never makes
    a member; with no end at all both end bounds are +inf, but a known end with no
    earliest day may have come at any time, so it makes no member either.
    """
    s1, s2 = row.start_earliest, row.start_latest
    before_e1 = not row.ended or (row.end_earliest is not None and on < row.end_earliest)
    before_e2 = not row.ended or row.end_latest is None or on < row.end_latest
    if s2 is not None and s2 <= on and before_e1:
        return "member"
    if (s1 is None or s1 <= on) and before_e2:
        return "possible"
    return None


def in_segment(row: MembershipRow, on: date) -> bool:
    """Whether the role and title of this row are the ones held on that day."""
    return (row.seg_from is None or row.seg_from <= on) and (row.seg_until is None or on < row.seg_until)


def counts(row: MembershipRow, min_status: MinStatus) -> bool:
    """Whether a membership counts in rosters: live, and at least as sure as asked."""
    return row.status not in DEAD and STATUS_RANK[row.status] >= STATUS_RANK[min_status]


def _start(row: MembershipRow) -> PartialDate:
    return PartialDate(value=row.start_value, earliest=row.start_earliest, latest=row.start_latest)


def _end(row: MembershipRow) -> PartialDate | None:
    if not row.ended:
        return None
    return PartialDate(value=row.end_value, earliest=row.end_earliest, latest=row.end_latest)


def _entry(row: MembershipRow, names: Mapping[str, str | None]) -> RosterEntry:
    return RosterEntry(
        person_id=row.person_id,
        name=names.get(row.person_id),
        org_id=row.org_id,
        role=row.role,
        title=row.title,
        start=_start(row),
        status=row.status,
        # A row holds its sources as JSON (msgspec.Raw), passed through undecoded: it
        # encodes exactly as this tuple would, hence the cast.
        sources=cast("tuple[SourceRef, ...]", row.sources),
    )


def _entry_order(entry: RosterEntry) -> tuple[str, str, str, date, date, str]:
    # Rows come from SQL in any order, so ties on name and id are broken by everything
    # else that tells two memberships apart.
    return (
        entry.name or "",
        entry.person_id,
        entry.org_id,
        entry.start.earliest or _FIRST,
        entry.start.latest or _LAST,
        entry.role,
    )


def roster(
    org_id: str,
    on: date,
    min_status: MinStatus,
    membership_rows: Iterable[MembershipRow],
    names: Mapping[str, str | None],
    org_ids: Set[str],
    as_of: int,
) -> Roster:
    """Who is in the orgs of `org_ids` on a day (`roster_orgs` says which to pass), named
    from `names` (person id to name as of the position; an absent id has no name)."""
    held: dict[tuple[str, str], tuple[tuple[int, int, date], Standing, MembershipRow]] = {}
    for row in membership_rows:
        if row.org_id not in org_ids or not counts(row, min_status) or not in_segment(row, on):
            continue
        standing = classify(row, on)
        if standing is None:
            continue
        rank = (standing == "member", row.role == "lead", row.start_earliest or _FIRST)
        key = (row.person_id, row.org_id)
        if key not in held or _better(rank, row, held[key][0], held[key][2]):
            held[key] = (rank, standing, row)
    members = [_entry(row, names) for _, standing, row in held.values() if standing == "member"]
    possible = [_entry(row, names) for _, standing, row in held.values() if standing == "possible"]
    return Roster(
        org_id=org_id,
        on=on,
        as_of=as_of,
        members=sorted(members, key=_entry_order),
        possible=sorted(possible, key=_entry_order),
    )


def _better(
    rank: tuple[int, int, date], row: MembershipRow, than: tuple[int, int, date], other: MembershipRow
) -> bool:
    """Which of two rows of one person in one org a roster shows: the surer, then the
    lead, then the later start; rows tied on all three by what else tells them apart,
    so that the choice never depends on the order rows come in."""
    if rank != than:
        return rank > than
    return _row_order(row) > _row_order(other)


def _row_order(row: MembershipRow) -> bytes:
    return _encoder.encode(row)


def roster_orgs(
    org_id: str, on: date, all_org_rows: Iterable[OrgRow], include_suborgs: bool
) -> frozenset[str]:
    """The orgs a roster covers: the org, and its sub-orgs when asked, if it exists that day."""
    rows = list(all_org_rows)
    if include_suborgs:
        return frozenset(subtree(org_id, on, rows))
    exists = version_on((r for r in rows if r.org_id == org_id), on) is not None
    return frozenset({org_id}) if exists else frozenset()


def timeline(
    person_id: str, name: str | None, membership_rows: Iterable[MembershipRow], as_of: int
) -> Timeline:
    """A career: one entry per stint, with its last role, in start order; `name` is the
    person's as of the position."""
    stints: dict[int, list[MembershipRow]] = {}
    for row in membership_rows:
        if row.person_id == person_id:
            stints.setdefault(row.stint, []).append(row)

    def order(stint: int) -> tuple[date, date, str, str, int]:
        first = stints[stint][0]
        return (
            first.start_earliest or _FIRST,
            first.start_latest or _LAST,
            first.org_id,
            first.fact_key,
            stint,
        )

    entries = []
    for stint in sorted(stints, key=order):
        segments = sorted(stints[stint], key=lambda r: r.seg_from or _FIRST)
        last = segments[-1]
        entries.append(
            TimelineEntry(
                org_id=last.org_id,
                role=last.role,
                title=last.title,
                start=_start(last),
                end=_end(last),
                status=last.status,
                sources=cast("tuple[SourceRef, ...]", last.sources),  # as in _entry
                roles=[
                    RoleSpan(role=r.role, title=r.title, since=r.seg_from, until=r.seg_until)
                    for r in segments
                ],
            )
        )
    return Timeline(person_id=person_id, name=name, as_of=as_of, memberships=entries)


# ---- orgs ---------------------------------------------------------------------------------


def _nearest(rows: list[OrgRow], on: date) -> OrgRow | None:
    """The version that holds on a day; else the first one before it began, the last after."""
    if not rows:
        return None
    held = version_on(rows, on)
    if held is not None:
        return held
    ordered = sorted(rows, key=lambda r: r.valid_from or _FIRST)
    first = ordered[0]
    return first if first.valid_from is not None and on < first.valid_from else ordered[-1]


def org_view(org_id: str, on: date, org_rows: Iterable[OrgRow], as_of: int) -> OrgView | None:
    """An org's name, kind and parent on a day; None when there is no such org."""
    rows = [r for r in org_rows if r.org_id == org_id]
    row = _nearest(rows, on)
    if row is None:
        return None
    exists = version_on(rows, on) is not None
    return OrgView(
        org_id=org_id,
        name=row.name,
        kind=row.kind,
        parent_id=row.parent_id if exists else None,
        as_of=as_of,
        exists=exists,
    )


def _children(on: date, all_org_rows: Iterable[OrgRow]) -> tuple[dict[str, OrgRow], dict[str, list[OrgRow]]]:
    """The orgs existing on a day, and each one's children that day, by name then id."""
    current: dict[str, OrgRow] = {}
    for row in all_org_rows:
        if version_on((row,), on) is not None:
            current[row.org_id] = row
    children: dict[str, list[OrgRow]] = {}
    for row in sorted(current.values(), key=lambda r: (r.name or "", r.org_id)):
        if row.parent_id is not None and row.parent_id != row.org_id:
            children.setdefault(row.parent_id, []).append(row)
    return current, children


def subtree(org_id: str, on: date, all_org_rows: Iterable[OrgRow]) -> list[str]:
    """The org and every org under it on a day, top down; empty if it does not exist then."""
    current, children = _children(on, all_org_rows)
    if org_id not in current:
        return []
    found = [org_id]
    seen = {org_id}
    for parent in found:
        for child in children.get(parent, ()):
            if child.org_id not in seen:
                seen.add(child.org_id)
                found.append(child.org_id)
    return found


def _ever_under(top: str, rows: Iterable[OrgRow]) -> set[str]:
    """The org and every org under it on some day: a superset of its subtree on any day
    (a path under it on one day runs along parent links some version has)."""
    children: dict[str, set[str]] = {}
    for row in rows:
        if row.parent_id is not None and row.parent_id != row.org_id:
            children.setdefault(row.parent_id, set()).add(row.org_id)
    found, todo = {top}, [top]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree(org_id: str, on: date, all_org_rows: Iterable[OrgRow], as_of: int) -> Tree | None:
    """The org and its sub-orgs on a day, nested; None when there is no such org."""
    rows = list(all_org_rows)
    top = _nearest([r for r in rows if r.org_id == org_id], on)
    if top is None:
        return None
    current, children = _children(on, rows)
    seen = {org_id}

    def nodes(parent: str) -> list[TreeNode]:
        found = [c for c in children.get(parent, ()) if c.org_id not in seen]
        seen.update(c.org_id for c in found)
        return [TreeNode(org_id=c.org_id, name=c.name, children=nodes(c.org_id)) for c in found]

    return Tree(
        org_id=org_id, name=top.name, as_of=as_of, children=nodes(org_id) if org_id in current else []
    )


# ---- flows --------------------------------------------------------------------------------


def move_day(row: MoveRow) -> date | None:
    """The day a move stands at: the point of its date, None being -inf."""
    return point(DayRange(row.on_earliest, row.on_latest))


def flows(
    from_id: str,
    to_id: str,
    since: date | None,
    until: date | None,
    move_rows: Iterable[MoveRow],
    all_org_rows: Iterable[OrgRow],
    as_of: int,
) -> Flows:
    """Moves from an org's subtree to another's, each subtree taken on the move's day."""
    rows = list(all_org_rows)
    # Only orgs ever under either end can be in its subtree on some day, and only their
    # versions can change those subtrees: the moves and days to test come down from the
    # whole log's to the two subtrees' (a flow between two teams no longer walks every
    # org and every move ever recorded).
    ever = {top: _ever_under(top, rows) for top in (from_id, to_id)}
    rows_of = {top: [r for r in rows if r.org_id in under] for top, under in ever.items()}
    subtrees: dict[tuple[str, date], set[str]] = {}
    # Subtrees change only on the days a version of an org in them begins or ends.
    boundaries = sorted(
        {d for top in ever for r in rows_of[top] for d in (r.valid_from, r.valid_until) if d is not None}
    )

    def inside(top: str, org_id: str, day: date) -> bool:
        if org_id not in ever[top]:
            return False
        if (top, day) not in subtrees:
            subtrees[top, day] = {top, *subtree(top, day, rows_of[top])}
        return org_id in subtrees[top, day]

    def counted(row: MoveRow, first: date) -> bool:
        """Whether the two orgs sit in the two subtrees on some day the move's date allows."""
        last = row.on_latest or _LAST
        days = [first, *(d for d in boundaries if first < d <= last)]
        return any(inside(from_id, row.from_org_id, d) and inside(to_id, row.to_org_id, d) for d in days)

    moves: list[tuple[date, Move]] = []
    for row in move_rows:
        if row.from_org_id not in ever[from_id] or row.to_org_id not in ever[to_id]:
            continue
        day = move_day(row)
        if since is not None and (day is None or day < since):
            continue
        if until is not None and day is not None and day > until:
            continue
        at = day or _FIRST
        if counted(row, row.on_earliest or _FIRST):
            on = PartialDate(value=row.on_value, earliest=row.on_earliest, latest=row.on_latest)
            move = Move(person_id=row.person_id, from_org_id=row.from_org_id, to_org_id=row.to_org_id, on=on)
            moves.append((at, move))
    moves.sort(key=lambda m: (m[0], m[1].person_id, m[1].from_org_id, m[1].to_org_id))
    return Flows(source=from_id, target=to_id, as_of=as_of, count=len(moves), moves=[m for _, m in moves])


# ---- replay -------------------------------------------------------------------------------


def _names(people: Mapping[str, PersonRow]) -> dict[str, str | None]:
    return {person_id: row.name for person_id, row in people.items()}


def state_view(
    on: date,
    min_status: MinStatus,
    all_org_rows: Iterable[OrgRow],
    membership_rows: Iterable[MembershipRow],
    people: Mapping[str, PersonRow],
    as_of: int,
) -> StateView:
    """Every org existing on a day, with its own roster (sub-orgs appear as themselves)."""
    by_org: dict[str, list[MembershipRow]] = {}
    for row in membership_rows:
        by_org.setdefault(row.org_id, []).append(row)
    current, _ = _children(on, all_org_rows)
    names = _names(people)
    orgs = []
    for org_id in sorted(current):
        version = current[org_id]
        listed = roster(org_id, on, min_status, by_org.get(org_id, ()), names, {org_id}, as_of)
        orgs.append(
            OrgState(
                org_id=org_id,
                name=version.name,
                kind=version.kind,
                parent_id=version.parent_id,
                members=listed.members,
                possible=listed.possible,
            )
        )
    return StateView(on=on, as_of=as_of, orgs=orgs)


# ---- an org's history ---------------------------------------------------------------------


class OrgVersion(Answer, frozen=True, kw_only=True):
    """One valid-time version of an org: its name, kind and parent over [from, until)."""

    name: str | None
    kind: str | None
    parent_id: str | None
    since: date | None = msgspec.field(name="from")
    until: date | None
    ended: bool


class Stint(Answer, frozen=True, kw_only=True):
    """A timeline entry without its sources (the roster and the person's timeline have them)."""

    org_id: str
    role: str
    title: str | None
    start: PartialDate
    end: PartialDate | None
    status: str
    roles: list[RoleSpan]


class OrgPerson(Answer, frozen=True, kw_only=True):
    person_id: str
    name: str | None
    stints: list[Stint]


class OrgHistory(Answer, frozen=True, kw_only=True):
    org_id: str
    name: str | None
    as_of: int
    versions: list[OrgVersion]
    people: list[OrgPerson]


def org_history(
    org_id: str,
    on: date,
    org_rows: Iterable[OrgRow],
    membership_rows: Iterable[MembershipRow],
    names: Mapping[str, str | None],
    as_of: int,
) -> OrgHistory | None:
    """Everyone who was ever in the org (or the orgs of the rows given), with each stint,
    over all valid time: each person's `timeline`, kept to these rows, without sources.
    People come in the order of their first start; None when there is no such org."""
    versions = sorted((r for r in org_rows if r.org_id == org_id), key=lambda r: r.valid_from or _FIRST)
    top = _nearest(versions, on)
    if top is None:
        return None
    by_person: dict[str, list[MembershipRow]] = {}
    for row in membership_rows:
        by_person.setdefault(row.person_id, []).append(row)
    people = []
    for person_id, rows in by_person.items():
        career = timeline(person_id, names.get(person_id), rows, as_of)
        stints = [
            Stint(
                org_id=m.org_id,
                role=m.role,
                title=m.title,
                start=m.start,
                end=m.end,
                status=m.status,
                roles=m.roles,
            )
            for m in career.memberships
        ]
        people.append(OrgPerson(person_id=person_id, name=career.name, stints=stints))

    def first_start(person: OrgPerson) -> tuple[date, date, str, str]:
        start = person.stints[0].start
        return (start.earliest or _FIRST, start.latest or _LAST, person.name or "", person.person_id)

    return OrgHistory(
        org_id=org_id,
        name=top.name,
        as_of=as_of,
        versions=[
            OrgVersion(
                name=r.name,
                kind=r.kind,
                parent_id=r.parent_id,
                since=r.valid_from,
                until=r.valid_until,
                ended=r.ended,
            )
            for r in versions
        ],
        people=sorted(people, key=first_start),
    )
