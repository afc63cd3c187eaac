"""The questions readers ask, answered from rows alone.

Every function here takes the rows the fold produces (`service.fold`), never the State,
because the SQL cache fetches the same rows for a position and calls these same
functions: the rules of what makes a member, a possible member, a sub-org or a move live
here once. The `answer_*` functions at the bottom gather the rows of a State and call
them; they are the reference the SQL side is compared with.

Choices made here:
- A timeline has one entry per stint, with the role and title it holds last; its `roles`
  list gives every role segment.
- A known org asked about on a day it does not exist has an empty roster and subtree;
  its view is its nearest version with `exists` false.
- In flows, an org always counts as inside its own subtree, even on a day it did not
  exist, so moves out of an org added later in the log still count as leaving it.

Pure: standard library and msgspec only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import date
from typing import Final, Literal, Protocol, TypeAlias, cast

import msgspec

from service.dates import DayRange, point
from service.events import STATUS_RANK
from service.fold import (
    DEAD,
    MembershipRow,
    MoveRow,
    OrgRow,
    PersonRow,
    SourceRef,
    State,
    version_on,
)

Standing: TypeAlias = Literal["member", "possible"]
MinStatus: TypeAlias = Literal["rumor", "reported", "confirmed"]


class Membership(Protocol):
    """What the roster rules read of a membership row: a `MembershipRow` of the fold, or a
    row read from the cache (`service.reads.Member`) with its sources as the JSON array
    stored there, which a roster passes into its answer undecoded."""

    @property
    def person_id(self) -> str: ...
    @property
    def org_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def start_value(self) -> str | None: ...
    @property
    def start_earliest(self) -> date | None: ...
    @property
    def start_latest(self) -> date | None: ...
    @property
    def ended(self) -> bool: ...
    @property
    def end_earliest(self) -> date | None: ...
    @property
    def end_latest(self) -> date | None: ...
    @property
    def seg_from(self) -> date | None: ...
    @property
    def seg_until(self) -> date | None: ...
    @property
    def status(self) -> str: ...
    @property
    def sources(self) -> tuple[SourceRef, ...] | msgspec.Raw: ...


class Career(Membership, Protocol):
    """What a timeline reads besides: which fact a row states, and its end's own words."""

    @property
    def fact_key(self) -> str: ...
    @property
    def end_value(self) -> str | None: ...


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


# ---- memberships --------------------------------------------------------------------------


def classify(row: Membership, on: date) -> Standing | None:
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


def in_segment(row: Membership, on: date) -> bool:
    """Whether the role and title of this row are the ones held on that day."""
    return (row.seg_from is None or row.seg_from <= on) and (row.seg_until is None or on < row.seg_until)


def counts(row: Membership, min_status: MinStatus) -> bool:
    """Whether a membership counts in rosters: live, and at least as sure as asked."""
    return row.status not in DEAD and STATUS_RANK[row.status] >= STATUS_RANK[min_status]


def _start(row: Membership) -> PartialDate:
    return PartialDate(value=row.start_value, earliest=row.start_earliest, latest=row.start_latest)


def _end(row: Career) -> PartialDate | None:
    if not row.ended:
        return None
    return PartialDate(value=row.end_value, earliest=row.end_earliest, latest=row.end_latest)


def _entry(row: Membership, names: Mapping[str, str | None]) -> RosterEntry:
    return RosterEntry(
        person_id=row.person_id,
        name=names.get(row.person_id),
        org_id=row.org_id,
        role=row.role,
        title=row.title,
        start=_start(row),
        status=row.status,
        # A row read from the cache holds its sources as the stored JSON (msgspec.Raw),
        # passed through undecoded: it encodes as this tuple would, up to the order of keys
        # and spacing, hence the cast.
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
    membership_rows: Iterable[Membership],
    names: Mapping[str, str | None],
    org_ids: Set[str],
    as_of: int,
) -> Roster:
    """Who is in the orgs of `org_ids` on a day (`roster_orgs` says which to pass), named
    from `names` (person id to name as of the position; an absent id has no name)."""
    members: list[RosterEntry] = []
    possible: list[RosterEntry] = []
    for row in membership_rows:
        if row.org_id not in org_ids or not counts(row, min_status) or not in_segment(row, on):
            continue
        match classify(row, on):
            case "member":
                members.append(_entry(row, names))
            case "possible":
                possible.append(_entry(row, names))
    return Roster(
        org_id=org_id,
        on=on,
        as_of=as_of,
        members=sorted(members, key=_entry_order),
        possible=sorted(possible, key=_entry_order),
    )


def roster_orgs(
    org_id: str, on: date, all_org_rows: Iterable[OrgRow], include_suborgs: bool
) -> frozenset[str]:
    """The orgs a roster covers: the org, and its sub-orgs when asked, if it exists that day."""
    rows = list(all_org_rows)
    if include_suborgs:
        return frozenset(subtree(org_id, on, rows))
    exists = version_on((r for r in rows if r.org_id == org_id), on) is not None
    return frozenset({org_id}) if exists else frozenset()


def timeline(person_id: str, name: str | None, membership_rows: Iterable[Career], as_of: int) -> Timeline:
    """A career: one entry per stint, with its last role, in start order; `name` is the
    person's as of the position."""
    stints: dict[tuple[str, str, str | None, date | None, date | None], list[Career]] = {}
    for row in membership_rows:
        if row.person_id == person_id:
            key = (row.org_id, row.fact_key, row.start_value, row.start_earliest, row.start_latest)
            stints.setdefault(key, []).append(row)
    entries = []
    for key in sorted(stints, key=lambda k: (k[3] or _FIRST, k[4] or _LAST, k[0], k[1])):
        segments = sorted(stints[key], key=lambda r: r.seg_from or _FIRST)
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
    subtrees: dict[tuple[str, date], set[str]] = {}

    def inside(top: str, org_id: str, day: date) -> bool:
        if (top, day) not in subtrees:
            subtrees[top, day] = {top, *subtree(top, day, rows)}
        return org_id in subtrees[top, day]

    moves: list[tuple[date, Move]] = []
    for row in move_rows:
        day = move_day(row)
        if since is not None and (day is None or day < since):
            continue
        if until is not None and day is not None and day > until:
            continue
        at = day or _FIRST
        if inside(from_id, row.from_org_id, at) and inside(to_id, row.to_org_id, at):
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


# ---- the same questions asked of a State: the reference for the SQL cache ------------------


def answer_roster(
    state: State,
    org_id: str,
    on: date,
    include_suborgs: bool = False,
    min_status: MinStatus = "reported",
    as_of: int | None = None,
) -> Roster | None:
    if org_id not in state.orgs:
        return None
    org_ids = roster_orgs(org_id, on, state.all_org_rows(), include_suborgs)
    position = state.position if as_of is None else as_of
    rows = state.all_membership_rows()
    return roster(org_id, on, min_status, rows, _names(state.person_rows()), org_ids, position)


def answer_org(state: State, org_id: str, on: date, as_of: int | None = None) -> OrgView | None:
    return org_view(org_id, on, state.org_rows(org_id), state.position if as_of is None else as_of)


def answer_tree(state: State, org_id: str, on: date, as_of: int | None = None) -> Tree | None:
    return tree(org_id, on, state.all_org_rows(), state.position if as_of is None else as_of)


def answer_timeline(state: State, person_id: str, as_of: int | None = None) -> Timeline | None:
    if person_id not in state.people:
        return None
    position = state.position if as_of is None else as_of
    person = state.person_row(person_id)
    name = None if person is None else person.name
    return timeline(person_id, name, state.membership_rows(person_id), position)


def answer_flows(
    state: State,
    from_id: str,
    to_id: str,
    since: date | None = None,
    until: date | None = None,
    as_of: int | None = None,
) -> Flows | None:
    if from_id not in state.orgs or to_id not in state.orgs:
        return None
    position = state.position if as_of is None else as_of
    return flows(from_id, to_id, since, until, state.all_move_rows(), state.all_org_rows(), position)


def answer_state(
    state: State, on: date, min_status: MinStatus = "reported", as_of: int | None = None
) -> StateView:
    position = state.position if as_of is None else as_of
    rows = state.all_membership_rows()
    return state_view(on, min_status, state.all_org_rows(), rows, state.person_rows(), position)
