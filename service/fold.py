"""The fold: every claim in the log, folded into rows that state what the news says.

`fold(records) -> State` is the one place the meaning of the log lives. The State is
incremental: `apply` takes one more recorded event and says which people and orgs may
have changed (`Dirty`), so the SQL cache only re-derives their rows. Rows are frozen,
hashable values; the questions (rosters, timelines, trees, flows) are answered from rows
alone by `service.answers`, so the SQL cache and this fold share those rules.

Valid time uses partial dates (`service.dates`): a claim's `on` is a range of days; a
value-less date is (-inf, the source's published day]. Where one day is needed (an org
version boundary, a role segment, the order claims are applied in) the range's *point*
stands for it: its earliest day, else its latest, else -inf.

The rules, as decided:

1. The start range of a membership is the range of its join claim's `on`. Join claims
   of one fact_key (type, person, org, role) for the same person and org whose ranges
   overlap are ONE membership carrying all their sources; its start is the intersection
   of the ranges of its live (not denied or retracted) claims, or of all its claims when
   none is live. A claim overlapping no stint of its fact_key starts a new stint. Claims
   are grouped in position order, each joining the first stint whose combined range it
   overlaps, so a stint's claims always have a common day and the intersection is never
   empty (`dates.combine` would fall back on the hull). The role of member.joined is the
   stint's initial role; its title is the first title its claims give.
2. member.left ends the stint of (person, org) open at the left's date: the
   latest-starting stint whose start earliest <= the left's latest, else the latest
   stint; stints of another fact_key of that org whose start overlaps the chosen one's
   are the same stint reported with another role, and end with it. Several lefts ending
   one stint combine like joins (intersection, else hull). The left also ends the
   person's stints in every sub-org of the org as of the left's point (following OrgRow
   parents), if they started before that point and have no end at or before it. A left
   from an org the person never joined makes no membership row.
3. member.role_changed starts a new role segment of the stint chosen as in rule 2, from
   the change's point, with its role and title. With no stint in the org it does nothing.
4. lead.appointed: if no stint of the person in the org covers the appointment's point,
   a stint starts there with role lead; else every covering stint gets a lead segment from
   that point. It also ends the lead role (not the membership) of whoever held role lead
   in that org at that point: their segment turns back to role member. Everything is
   applied in valid-time order, so out-of-order recording gives the same answer.
5. org.merged X into Y on d: X ends at d; every stint in X open at d ends with the
   merge's range, and a stint in Y starts with it, with the role and title held at d in
   the latest-starting of them and the merge as its source, unless the person already
   has a stint in Y covering d. Sub-orgs of X get parent Y from d (and follow Y if Y
   merges on later).
6. org.dissolved X on d: X ends; every stint in X open at d ends with its range.
7. org.moved: the parent from d; org.renamed: the name from d; each gives a new OrgRow
   version. org.added creates the org, existing from its `on` (-inf without one); the
   first live org.added wins for kind, parent and `on`, later ones add nothing. An org
   ends at its earliest live merge or dissolution. An org only ever referred to exists
   for all time, with kind None.
8. Every claim's status starts as its envelope status; claim.confirmed / denied /
   retracted on event E sets E's status from that claim's position on (last one wins;
   claims on unknown ids, or on claim events, are ignored). A denied or retracted claim
   has no effect on rosters: such a left ends nothing, such a role change, appointment or
   org event does nothing. A membership's status is the highest-ranked status of its
   live join claims (of its appointment or merge when it was created by one); when all
   its join claims are dead the row stays, with the dead status set last.
9. comp.reported registers the ids it names and nothing else, for now.
10. Moves: a live member.left of A with to_org_id B, or a live member.joined of B with
    from_org_id A, is the move A->B. One MoveRow per (person, A, B) carries all those
    sources; its date combines the joins' ranges when any join reports it, else the
    lefts'.
11. Names: the first name seen for an id wins, whoever gave it; aliases are kept in the
    order added, deduplicated. Names and aliases say what a person or org is called,
    not where anyone works, so a claim's status does not touch them.

Within one person, claims are applied in order of (point, position); a membership row
is one role segment of one stint: segments partition its time, the first open below
(seg_from None), the last open above (seg_until None).

Pure: standard library and msgspec-typed events only, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, TypeAlias

import msgspec

from service import dates
from service import events as ev
from service.dates import DayRange

ClaimStatus: TypeAlias = Literal["rumor", "reported", "confirmed", "denied", "retracted"]
DEAD: Final = frozenset({"denied", "retracted"})

# -inf and +inf as days, so that points order and compare without None checks.
NEVER: Final = date.min
FOREVER: Final = date.max


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as stored in the log."""

    position: int
    event_id: uuid.UUID
    recorded_at: datetime
    fact_key: str
    event: ev.Event


@dataclass(frozen=True, slots=True)
class Dirty:
    """Whose rows an applied event may have changed; never misses one, may say too many."""

    people: frozenset[str]
    orgs: frozenset[str]


# Rows are immutable values made by the hundred thousand: msgspec Structs build, hash and
# compare in C, and hold no cycles, so the garbage collector need not track them.
class SourceRef(msgspec.Struct, frozen=True, gc=False):
    """One claim behind a row, with its own current status."""

    event_id: str
    position: int
    type: str
    status: str
    url: str | None
    outlet: str | None
    published_at: str | None
    lang: str | None
    quote: str | None


class PersonRow(msgspec.Struct, frozen=True, gc=False):
    person_id: str
    name: str | None
    aliases: tuple[str, ...]


class OrgRow(msgspec.Struct, frozen=True, gc=False):
    """One valid-time version of an org: [valid_from, valid_until), None being infinite."""

    org_id: str
    name: str | None
    kind: str | None
    parent_id: str | None
    valid_from: date | None
    valid_until: date | None
    ended: bool


class MembershipRow(msgspec.Struct, frozen=True, gc=False):
    """One role segment of one stint of a person in an org.

    Start and end are partial dates (start_earliest None is -inf, start_latest None is
    +inf; with `ended` False there is no known end). [seg_from, seg_until) is the part of
    the stint's valid time in which this role and title hold; None is open.
    """

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
    sources: tuple[SourceRef, ...]


class MoveRow(msgspec.Struct, frozen=True, gc=False):
    person_id: str
    from_org_id: str
    to_org_id: str
    on_value: str | None
    on_earliest: date | None
    on_latest: date | None
    sources: tuple[SourceRef, ...]


def version_on(rows: Iterable[OrgRow], on: date) -> OrgRow | None:
    """The version of an org that holds on a day, or None when it does not exist then."""
    for row in rows:
        if (row.valid_from is None or row.valid_from <= on) and (
            row.valid_until is None or on < row.valid_until
        ):
            return row
    return None


# ---- claims -----------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Claim:
    """A stored event with its current status and its resolved valid time."""

    rec: Recorded
    status: ClaimStatus
    status_position: int
    on: DayRange
    value: str | None
    # Careers are re-derived often; what a claim contributes to them is computed once
    # (its point date) or once per status (its source), not on every derivation.
    at: date = field(init=False)
    _source: SourceRef | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.at = _at(self.on)

    @property
    def live(self) -> bool:
        return self.status not in DEAD

    def source(self) -> SourceRef:
        cached = self._source
        if cached is not None and cached.status == self.status:
            return cached
        src = self.rec.event.source
        cached = self._source = SourceRef(
            event_id=str(self.rec.event_id),
            position=self.rec.position,
            type=ev.type_name(self.rec.event),
            status=self.status,
            url=None if src is None else src.url,
            outlet=None if src is None else src.outlet,
            published_at=None if src is None else src.published_at,
            lang=None if src is None else src.lang,
            quote=None if src is None else src.quote,
        )
        return cached


def _at(r: DayRange) -> date:
    return dates.point(r) or NEVER


def _valid_time(event: ev.Event) -> tuple[DayRange, str | None]:
    on = getattr(event.data, "on", None)
    if on is None:
        return DayRange(None, None), None
    if isinstance(on, str):
        low, high = dates.value_range(on)
        return DayRange(low, high), on
    published = None if event.source is None else event.source.published_day
    return dates.resolve_reported(on.value, on.earliest, on.latest, published), on.value


def _combined(claims: list[_Claim]) -> tuple[DayRange, str | None]:
    """The range several claims about one date allow, with the most precise one's words."""
    sharpest = min(claims, key=lambda c: (dates.width(c.on) or 10**9, c.rec.position))
    return dates.combine(c.on for c in claims), sharpest.value


def _sources(claims: Iterable[_Claim]) -> tuple[SourceRef, ...]:
    unique = {c.rec.position: c for c in claims}
    return tuple(unique[p].source() for p in sorted(unique))


# ---- one person's career ----------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Stint:
    org_id: str
    fact_key: str
    index: int
    start: DayRange
    start_value: str | None
    status: str
    segments: list[tuple[date, str, str | None]]
    claims: list[_Claim]
    lefts: list[_Claim] = field(default_factory=list)
    # The cascading left, merge or dissolution that ended it, when that came first.
    forced: _Claim | None = None
    # The end is asked for at every step of a career; it changes only when a left is
    # added or `forced` is set, so it is kept with what it was computed from.
    _end: tuple[DayRange, str | None] | None = None
    _end_from: tuple[int, _Claim | None] | None = None
    # The start never changes once the stint exists: its point is computed once.
    begins: date = field(init=False)

    def __post_init__(self) -> None:
        self.begins = _at(self.start)

    def end(self) -> tuple[DayRange, str | None] | None:
        basis = (len(self.lefts), self.forced)
        if self._end_from == basis:
            return self._end
        ends: list[tuple[DayRange, str | None]] = []
        if self.lefts:
            ends.append(_combined(self.lefts))
        if self.forced is not None:
            ends.append((self.forced.on, self.forced.value))
        self._end = min(ends, key=lambda e: _at(e[0])) if ends else None
        self._end_from = basis
        return self._end

    def ends(self) -> date:
        end = self.end()
        return FOREVER if end is None else _at(end[0])

    def open_at(self, day: date) -> bool:
        return self.begins <= day < self.ends()

    def role_at(self, day: date) -> tuple[str, str | None]:
        held = self.segments[0]
        for segment in self.segments:
            if segment[0] <= day:
                held = segment
        return held[1], held[2]

    def rows(self, person_id: str) -> Iterable[MembershipRow]:
        end = self.end()
        sources = _sources([*self.claims, *self.lefts, *([self.forced] if self.forced else [])])
        segments = _segments(self.segments)
        for i, (since, role, title) in enumerate(segments):
            yield MembershipRow(
                person_id=person_id,
                org_id=self.org_id,
                role=role,
                title=title,
                start_value=self.start_value,
                start_earliest=self.start.earliest,
                start_latest=self.start.latest,
                ended=end is not None,
                end_value=None if end is None else end[1],
                end_earliest=None if end is None else end[0].earliest,
                end_latest=None if end is None else end[0].latest,
                seg_from=None if i == 0 else since,
                seg_until=segments[i + 1][0] if i + 1 < len(segments) else None,
                status=self.status,
                fact_key=self.fact_key,
                sources=sources,
            )


def _segments(segments: list[tuple[date, str, str | None]]) -> list[tuple[date, str, str | None]]:
    """Role segments in time order: a later change on the same day replaces an earlier
    one, and a change to the role and title already held is no boundary."""
    result: list[tuple[date, str, str | None]] = []
    for segment in sorted(segments, key=lambda s: s[0]):
        if result and result[-1][0] == segment[0]:
            result.pop()
        if result and result[-1][1:] == segment[1:]:
            continue
        result.append(segment)
    return result


@dataclass(slots=True, eq=False)
class _Group:
    """Rule 1: the join claims of one stint, grouped as they are recorded.

    Grouping depends on the claims' ranges alone, so it is kept up to date as claims
    arrive instead of being redone at every derivation; what the group says of its
    stint (start, status, initial role and title) depends on their statuses too, and is
    recomputed only when one of those changed.
    """

    org_id: str
    fact_key: str
    common: DayRange
    claims: list[_Claim]
    _basis: list[ClaimStatus] = field(default_factory=list)
    _made: tuple[DayRange, str | None, str, tuple[date, str, str | None]] | None = None

    @staticmethod
    def add(groups: list[_Group], claim: _Claim, data: ev.MemberJoinedData) -> None:
        """Join the first group of the claim's fact whose range it overlaps, or start one."""
        for group in groups:
            if group.org_id == data.org_id and group.fact_key == claim.rec.fact_key:
                both = dates.intersect(group.common, claim.on)
                if both is not None:
                    group.claims.append(claim)
                    group.common = both
                    return
        groups.append(_Group(data.org_id, claim.rec.fact_key, claim.on, [claim]))

    def stint(self, index: int) -> _Stint:
        basis = [c.status for c in self.claims]
        if self._made is None or basis != self._basis:
            claims = self.claims
            live = [c for c in claims if c.live]
            start, value = _combined(live or claims)
            status: str
            if live:
                status = max(live, key=lambda c: ev.STATUS_RANK[c.status]).status
            else:
                status = max(claims, key=lambda c: c.status_position).status
            first = claims[0].rec.event.data
            assert isinstance(first, ev.MemberJoinedData)
            titles = [
                t for c in live or claims if (t := getattr(c.rec.event.data, "title", None)) is not None
            ]
            self._made = start, value, status, (NEVER, first.role, titles[0] if titles else None)
            self._basis = basis
        start, value, status, segment = self._made
        return _Stint(self.org_id, self.fact_key, index, start, value, status, [segment], list(self.claims))


def _start_order(stint: _Stint) -> tuple[date, str, int]:
    # Stints starting the same day differ by fact_key; ordering on it before the index
    # keeps the choice independent of the order the claims were recorded in.
    return stint.begins, stint.fact_key, stint.index


class _Career:
    """One person's stints, built by applying their claims in valid-time order."""

    def __init__(self, state: State, person_id: str, groups: list[_Group]) -> None:
        self.state = state
        self.person_id = person_id
        self.stints = [group.stint(i) for i, group in enumerate(groups)]

    def _new(self, org_id: str, origin: _Claim, role: str, title: str | None) -> None:
        self.stints.append(
            _Stint(
                org_id,
                origin.rec.fact_key,
                len(self.stints),
                origin.on,
                origin.value,
                origin.status,
                [(NEVER, role, title)],
                [origin],
            )
        )

    def chosen(self, org_id: str, when: DayRange) -> list[_Stint]:
        """Rule 2's stint open at a date, with the same stint as reported under other roles."""
        in_org = [s for s in self.stints if s.org_id == org_id]
        if not in_org:
            return []
        started = [
            s
            for s in in_org
            if s.start.earliest is None or when.latest is None or s.start.earliest <= when.latest
        ]
        primary = max(started or in_org, key=_start_order)
        return [primary] + [
            s
            for s in in_org
            if s is not primary and s.fact_key != primary.fact_key and dates.overlaps(s.start, primary.start)
        ]

    def left(self, claim: _Claim, data: ev.MemberLeftData) -> None:
        for stint in self.chosen(data.org_id, claim.on):
            stint.lefts.append(claim)
        day = claim.at
        for stint in self.stints:
            if (
                stint.org_id != data.org_id
                # Cheap and usually false: could the left's org ever be above this one?
                and data.org_id in self.state.ever_above(stint.org_id)
                and stint.begins < day < stint.ends()
                and data.org_id in self.state.ancestors(stint.org_id, day)
            ):
                stint.forced = claim

    def role_changed(self, claim: _Claim, data: ev.MemberRoleChangedData) -> None:
        for stint in self.chosen(data.org_id, claim.on):
            stint.segments.append((claim.at, data.role, data.title))
            stint.claims.append(claim)

    def appointed(self, claim: _Claim, data: ev.LeadAppointedData) -> None:
        day = claim.at
        if data.person_id != self.person_id:
            for stint in self.stints:
                if stint.org_id == data.org_id and stint.open_at(day) and stint.role_at(day)[0] == "lead":
                    stint.segments.append((day, "member", None))
            return
        covering = [s for s in self.stints if s.org_id == data.org_id and s.open_at(day)]
        for stint in covering:
            stint.segments.append((day, "lead", data.title))
            stint.claims.append(claim)
        if not covering:
            self._new(data.org_id, claim, "lead", data.title)

    def merged(self, claim: _Claim, data: ev.OrgMergedData) -> None:
        day = claim.at
        # The latest-starting stint goes first, so its role is the one carried over.
        carried = [s for s in self.stints if s.org_id == data.org_id and s.open_at(day)]
        for stint in sorted(carried, key=_start_order, reverse=True):
            stint.forced = claim
            if not any(s.org_id == data.into_id and s.open_at(day) for s in self.stints):
                self._new(data.into_id, claim, *stint.role_at(day))

    def dissolved(self, claim: _Claim, data: ev.OrgDissolvedData) -> None:
        for stint in self.stints:
            if stint.org_id == data.org_id and stint.open_at(claim.at):
                stint.forced = claim

    def apply(self, claim: _Claim) -> None:
        match claim.rec.event:
            case ev.MemberLeft(data=d):
                self.left(claim, d)
            case ev.MemberRoleChanged(data=d):
                self.role_changed(claim, d)
            case ev.LeadAppointed(data=d):
                self.appointed(claim, d)
            case ev.OrgMerged(data=d):
                self.merged(claim, d)
            case ev.OrgDissolved(data=d):
                self.dissolved(claim, d)

    def rows(self) -> frozenset[MembershipRow]:
        return frozenset(row for stint in self.stints for row in stint.rows(self.person_id))


def _moves(person_id: str, claims: list[_Claim]) -> frozenset[MoveRow]:
    """Rule 10: one move per (person, from, to), however many claims report it."""
    reports: dict[tuple[str, str], tuple[list[_Claim], list[_Claim]]] = {}
    for claim in claims:
        if not claim.live:
            continue
        match claim.rec.event:
            case ev.MemberJoined(data=d) if d.from_org_id is not None:
                reports.setdefault((d.from_org_id, d.org_id), ([], []))[0].append(claim)
            case ev.MemberLeft(data=d) if d.to_org_id is not None:
                reports.setdefault((d.org_id, d.to_org_id), ([], []))[1].append(claim)
    rows = set()
    for (from_id, to_id), (joins, lefts) in reports.items():
        on, value = _combined(joins or lefts)
        rows.add(MoveRow(person_id, from_id, to_id, value, on.earliest, on.latest, _sources(joins + lefts)))
    return frozenset(rows)


# ---- the state ---------------------------------------------------------------------------

_STATUS_OF: Final[dict[type[ev.Envelope], ClaimStatus]] = {
    ev.ClaimConfirmed: "confirmed",
    ev.ClaimDenied: "denied",
    ev.ClaimRetracted: "retracted",
}


class State:
    """Everything the log has said up to `position`, and the rows it derives.

    Rows are derived per person and per org on demand and cached; `apply` drops the cache
    of every id its Dirty names, which is why Dirty must never miss a change.
    """

    def __init__(self) -> None:
        self.position = 0
        self._claims: dict[uuid.UUID, _Claim] = {}
        self._person_names: dict[str, str | None] = {}
        self._aliases: dict[str, list[str]] = {}
        self._org_names: dict[str, str | None] = {}
        # Member claims by person, org claims by the org they are about, appointments by org.
        self._careers: dict[str, list[_Claim]] = {}
        self._groups: dict[str, list[_Group]] = {}
        self._org_claims: dict[str, list[_Claim]] = {}
        self._appointments: dict[str, list[_Claim]] = {}
        # Who has member claims in an org; and, whatever their status, the orgs each org's
        # structure reaches down to: its claimed sub-orgs and the orgs merged into it.
        self._org_people: dict[str, set[str]] = {}
        self._org_leads: dict[str, set[str]] = {}
        self._org_leavers: dict[str, set[str]] = {}
        self._below: dict[str, set[str]] = {}
        self._merged_in: dict[str, set[str]] = {}
        # _below's edges upwards, and what they reach from each org (dropped on a new edge).
        self._ups: dict[str, set[str]] = {}
        self._above: dict[str, frozenset[str]] = {}
        self._career_rows: dict[str, frozenset[MembershipRow]] = {}
        # Moves depend on the person's own claims alone, so org events leave them be.
        self._moves: dict[str, frozenset[MoveRow]] = {}
        self._org_rows: dict[str, frozenset[OrgRow]] = {}

    @property
    def people(self) -> Set[str]:
        return self._person_names.keys()

    @property
    def orgs(self) -> Set[str]:
        return self._org_names.keys()

    # ---- applying ----

    def apply(self, rec: Recorded) -> Dirty:
        if rec.position != self.position + 1:
            raise ValueError(f"position {rec.position} does not follow {self.position}")
        self.position = rec.position
        event = rec.event
        if isinstance(event, ev.ClaimConfirmed | ev.ClaimDenied | ev.ClaimRetracted):
            target = self._claims.get(event.data.event_id)
            if target is None:
                return Dirty(frozenset(), frozenset())
            target.status, target.status_position = _STATUS_OF[type(event)], rec.position
            careers, orgs = self._reach(target)
            about = target.rec.event
        else:
            on, value = _valid_time(event)
            claim = _Claim(rec, event.status, rec.position, on, value)
            self._claims[rec.event_id] = claim
            named = self._register(claim)
            careers, orgs = self._reach(claim)
            orgs |= named
            about = event
        people = {ref.id for ref in ev.referenced_people(about)}
        if _makes_moves(about):
            for person_id in people:
                self._moves.pop(person_id, None)
        for person_id in careers:
            self._career_rows.pop(person_id, None)
        for org_id in orgs:
            self._org_rows.pop(org_id, None)
        # Whoever the event names may have a new name or alias; careers may change further.
        return Dirty(frozenset(people | careers), frozenset(orgs))

    def _register(self, claim: _Claim) -> set[str]:
        """Index a new claim; return the orgs whose name it gave (their rows change)."""
        event = claim.rec.event
        for ref in ev.referenced_people(event):
            if self._person_names.get(ref.id) is None:
                self._person_names[ref.id] = ref.name
        named = set()
        for ref in ev.referenced_orgs(event):
            if self._org_names.get(ref.id) is None and (
                ref.name is not None or ref.id not in self._org_names
            ):
                self._org_names[ref.id] = ref.name
                named.add(ref.id)
        match event:
            case ev.PersonAdded(data=d):
                self._alias(d.person_id, d.aliases)
            case ev.PersonAliasAdded(data=d):
                self._alias(d.person_id, [d.alias])
            case (
                ev.MemberJoined(data=d)
                | ev.MemberLeft(data=d)
                | ev.MemberRoleChanged(data=d)
                | ev.LeadAppointed(data=d)
            ):
                self._careers.setdefault(d.person_id, []).append(claim)
                if isinstance(d, ev.MemberJoinedData):
                    _Group.add(self._groups.setdefault(d.person_id, []), claim, d)
                self._org_people.setdefault(d.org_id, set()).add(d.person_id)
                if isinstance(event, ev.MemberLeft):
                    self._org_leavers.setdefault(d.org_id, set()).add(d.person_id)
                if isinstance(event, ev.LeadAppointed) or getattr(d, "role", None) == "lead":
                    self._org_leads.setdefault(d.org_id, set()).add(d.person_id)
                if isinstance(event, ev.LeadAppointed):
                    self._appointments.setdefault(d.org_id, []).append(claim)
            case ev.OrgAdded(data=d) | ev.OrgMoved(data=d):
                self._org_claims.setdefault(d.org_id, []).append(claim)
                if d.parent_id is not None:
                    self._edge(d.parent_id, d.org_id)
            case ev.OrgMerged(data=d):
                self._org_claims.setdefault(d.org_id, []).append(claim)
                self._edge(d.into_id, d.org_id)
                self._merged_in.setdefault(d.into_id, set()).add(d.org_id)
            case ev.OrgRenamed(data=d) | ev.OrgDissolved(data=d):
                self._org_claims.setdefault(d.org_id, []).append(claim)
        return named

    def _edge(self, upper: str, lower: str) -> None:
        self._below.setdefault(upper, set()).add(lower)
        if upper not in self._ups.setdefault(lower, set()):
            self._ups[lower].add(upper)
            self._above.clear()

    def _alias(self, person_id: str, aliases: list[str]) -> None:
        known = self._aliases.setdefault(person_id, [])
        known.extend(a for a in dict.fromkeys(aliases) if a not in known)

    def _reach(self, claim: _Claim) -> tuple[set[str], set[str]]:
        """The people whose careers and the orgs whose versions a claim (or a change of
        its status) may change. Names are not here: they never depend on a claim's status.

        A person's rows depend on their own claims, on appointments, merges and
        dissolutions in the orgs their stints are in (orgs merged in count, since their
        stints are carried over), and on the parents of those orgs (a left cascades to
        sub-orgs). An org's rows depend on its own claims and on merges of its parents.
        """
        event = claim.rec.event
        people: set[str] = set()
        orgs: set[str] = set()
        match event:
            case ev.MemberJoined(data=d) | ev.MemberLeft(data=d) | ev.MemberRoleChanged(data=d):
                people.add(d.person_id)
            case ev.LeadAppointed(data=d):
                people.add(d.person_id)
                # An appointment only ends the lead role of whoever held it, and only a
                # lead-making claim (in the org or one merged into it) makes a holder.
                holders = self._leads_in(self._closure(d.org_id, self._merged_in))
                if claim.status_position == claim.rec.position:
                    # A new appointment can only turn a lead held on its day into member:
                    # whoever's (still valid) rows hold no lead there that day keeps them.
                    holders = {p for p in holders if self._may_hold(p, d.org_id, claim.at, lead=True)}
                people |= holders
            case ev.OrgAdded(data=d) | ev.OrgMoved(data=d):
                # A parent only matters to careers through a left cascading down from an
                # org above: what changes is what sits above this org, so only people in
                # its subtree who left some org that is (or was) above it can change.
                below = self._closure(d.org_id, self._below)
                people |= self._people_in(below) & self._leavers_in(self.ever_above(d.org_id))
                orgs |= {ref.id for ref in ev.referenced_orgs(event)}
            case ev.OrgRenamed():
                orgs |= {ref.id for ref in ev.referenced_orgs(event)}
            case ev.OrgMerged(data=d) | ev.OrgDissolved(data=d):
                # Stints in the org (and in orgs merged into it, carried over) end, and
                # move on with a merge. Below it, the org's end decides where its sub-orgs
                # sit (a merge re-parents them) and whether a left from the org or above
                # still reaches the stints inside them.
                carried = self._closure(d.org_id, self._merged_in)
                below = self._closure(d.org_id, self._below)
                inside = self._people_in(carried)
                if claim.status_position == claim.rec.position:
                    # A new end only reaches stints open on its day (rows in the org, where
                    # carried-over stints are too), and stints after it through a left
                    # from above that no longer finds the org.
                    above = self._leavers_in(self.ever_above(d.org_id))
                    inside = {p for p in inside if p in above or self._may_hold(p, d.org_id, claim.at)}
                people |= inside
                people |= self._people_in(below - carried) & self._leavers_in(
                    self.ever_above(d.org_id) | carried
                )
                orgs |= below | {ref.id for ref in ev.referenced_orgs(event)}
        return people, orgs

    @staticmethod
    def _closure(org_id: str, edges: dict[str, set[str]]) -> set[str]:
        seen = {org_id}
        todo = [org_id]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def _people_in(self, orgs: set[str]) -> set[str]:
        return {p for o in orgs for p in self._org_people.get(o, ())}

    def _leads_in(self, orgs: set[str]) -> set[str]:
        return {p for o in orgs for p in self._org_leads.get(o, ())}

    def _may_hold(self, person_id: str, org_id: str, day: date, *, lead: bool = False) -> bool:
        """Whether the person's rows as derived have a stint in the org open on a day
        (holding its lead then, with `lead`); True when they are not derived since their
        last change, since there are then no rows to rule it out."""
        rows = self._career_rows.get(person_id)
        if rows is None:
            return True
        return any(
            row.org_id == org_id
            and _row_begins(row) <= day < _row_ends(row)
            and (
                not lead
                or (
                    row.role == "lead"
                    and (row.seg_from is None or row.seg_from <= day)
                    and (row.seg_until is None or day < row.seg_until)
                )
            )
            for row in rows
        )

    def _leavers_in(self, orgs: Iterable[str]) -> set[str]:
        return {p for o in orgs for p in self._org_leavers.get(o, ())}

    def ever_above(self, org_id: str) -> frozenset[str]:
        """Every org that is or was ever claimed above an org (parents, and what they
        merged into), whatever the claims' status: a superset of its ancestors on any day."""
        found = self._above.get(org_id)
        if found is None:
            seen: set[str] = set()
            todo = list(self._ups.get(org_id, ()))
            while todo:
                if (up := todo.pop()) not in seen:
                    seen.add(up)
                    todo.extend(self._ups.get(up, ()))
            found = self._above[org_id] = frozenset(seen)
        return found

    # ---- people ----

    def person_row(self, person_id: str) -> PersonRow | None:
        if person_id not in self._person_names:
            return None
        return PersonRow(person_id, self._person_names[person_id], tuple(self._aliases.get(person_id, ())))

    def membership_rows(self, person_id: str) -> frozenset[MembershipRow]:
        cached = self._career_rows.get(person_id)
        if cached is None:
            cached = self._career_rows[person_id] = self._memberships(
                person_id, self._careers.get(person_id, [])
            )
        return cached

    def move_rows(self, person_id: str) -> frozenset[MoveRow]:
        cached = self._moves.get(person_id)
        if cached is None:
            cached = self._moves[person_id] = _moves(person_id, self._careers.get(person_id, []))
        return cached

    def _memberships(self, person_id: str, claims: list[_Claim]) -> frozenset[MembershipRow]:
        career = _Career(self, person_id, self._groups.get(person_id, []))
        steps = [c for c in claims if c.live and not isinstance(c.rec.event, ev.MemberJoined)]
        own = {c.rec.position for c in claims}
        # The orgs this person's stints can be in: those they have claims in, and those
        # these merge into, since a merge carries stints over.
        # Where each can first begin: no stint starts before its claims' or merge's point.
        first: dict[str, date] = {}
        for c in claims:
            org_id = _org_of(c)
            first[org_id] = min(c.at, first.get(org_id, FOREVER))
        orgs = set(first)
        todo = list(orgs)
        while todo:
            org_id = todo.pop()
            for claim in self._org_claims.get(org_id, ()):
                if not claim.live:
                    continue
                match claim.rec.event:
                    case ev.OrgMerged(data=d):
                        steps.append(claim)
                        first[d.into_id] = min(claim.at, first.get(d.into_id, FOREVER))
                        if d.into_id not in orgs:
                            orgs.add(d.into_id)
                            todo.append(d.into_id)
                    case ev.OrgDissolved():
                        steps.append(claim)
        for org_id in orgs:
            # Another's appointment only ends a lead role held on its day, so it matters
            # only to people who may lead here, and only once they may be here: skipping
            # the rest keeps a career's cost proportional to the career, not to the
            # history of the orgs it went through.
            if any(person_id in self._org_leads.get(o, ()) for o in self._closure(org_id, self._merged_in)):
                steps.extend(
                    c
                    for c in self._appointments.get(org_id, ())
                    if c.live and c.at >= first[org_id] and c.rec.position not in own
                )
        for step in sorted(steps, key=lambda c: (c.at, c.rec.position)):
            career.apply(step)
        return career.rows()

    def ancestors(self, org_id: str, day: date) -> set[str]:
        """The orgs above an org on a day, following each version's parent."""
        found: set[str] = set()
        row = version_on(self.org_rows(org_id), day)
        while row is not None and row.parent_id is not None and row.parent_id not in found:
            found.add(row.parent_id)
            row = version_on(self.org_rows(row.parent_id), day)
        return found

    # ---- orgs ----

    def org_rows(self, org_id: str) -> frozenset[OrgRow]:
        cached = self._org_rows.get(org_id)
        if cached is None:
            cached = self._versions(org_id) if org_id in self._org_names else frozenset()
            self._org_rows[org_id] = cached
        return cached

    def _end_of(self, org_id: str) -> _Claim | None:
        """The merge or dissolution that ends an org: the earliest live one."""
        ends = [
            c
            for c in self._org_claims.get(org_id, ())
            if c.live and isinstance(c.rec.event, ev.OrgMerged | ev.OrgDissolved)
        ]
        return min(ends, key=lambda c: (c.at, c.rec.position), default=None)

    def _heir(self, org_id: str, day: date) -> str:
        """Where an org's sub-orgs sit on a day: the org, or what it was merged into by then."""
        seen = {org_id}
        while (end := self._end_of(org_id)) is not None and end.at <= day:
            if not isinstance(end.rec.event, ev.OrgMerged) or end.rec.event.data.into_id in seen:
                break
            org_id = end.rec.event.data.into_id
            seen.add(org_id)
        return org_id

    def _merge_days(self, org_id: str) -> set[date]:
        days: set[date] = set()
        seen = {org_id}
        while (end := self._end_of(org_id)) is not None and isinstance(end.rec.event, ev.OrgMerged):
            days.add(end.at)
            org_id = end.rec.event.data.into_id
            if org_id in seen:
                break
            seen.add(org_id)
        return days

    def _versions(self, org_id: str) -> frozenset[OrgRow]:
        claims = [c for c in self._org_claims.get(org_id, ()) if c.live]
        added = next((c.rec.event.data for c in claims if isinstance(c.rec.event, ev.OrgAdded)), None)
        assert added is None or isinstance(added, ev.OrgAddedData)
        begins = NEVER if added is None else _at(next(c.on for c in claims if c.rec.event.data is added))
        # Renames and moves in valid-time order; a later one on the same day wins.
        changes = sorted(
            (c for c in claims if isinstance(c.rec.event, ev.OrgRenamed | ev.OrgMoved)),
            key=lambda c: (c.at, c.rec.position),
        )

        def version(day: date) -> tuple[str | None, str | None]:
            name, parent = self._org_names[org_id], None if added is None else added.parent_id
            for change in changes:
                if change.at > day:
                    break
                match change.rec.event:
                    case ev.OrgRenamed(data=d):
                        name = d.name
                    case ev.OrgMoved(data=d):
                        parent = d.parent_id
            return name, None if parent is None else self._heir(parent, day)

        end = self._end_of(org_id)
        ends = FOREVER if end is None else max(end.at, begins)
        parents = {added.parent_id if added else None} | {_parent_of(c) for c in changes}
        days = {begins} | {c.at for c in changes}
        days |= {d for p in parents if p is not None for d in self._merge_days(p)}
        rows: list[OrgRow] = []
        for day in sorted(d for d in days if d == begins or begins < d < ends):
            name, parent = version(day)
            if rows and (rows[-1].name, rows[-1].parent_id) == (name, parent):
                continue
            if rows:
                rows[-1] = msgspec.structs.replace(rows[-1], valid_until=day)
            kind = None if added is None else added.kind
            rows.append(OrgRow(org_id, name, kind, parent, None if day == NEVER else day, None, False))
        if end is not None:
            rows[-1] = msgspec.structs.replace(rows[-1], valid_until=ends, ended=True)
        return frozenset(rows)

    # ---- everything, for answers over the whole state ----

    def all_org_rows(self) -> list[OrgRow]:
        return [row for org_id in self.orgs for row in self.org_rows(org_id)]

    def all_membership_rows(self) -> list[MembershipRow]:
        return [row for person_id in self.people for row in self.membership_rows(person_id)]

    def all_move_rows(self) -> list[MoveRow]:
        return [row for person_id in self.people for row in self.move_rows(person_id)]

    def person_rows(self) -> dict[str, PersonRow]:
        return {p: row for p in self.people if (row := self.person_row(p)) is not None}


def _makes_moves(event: ev.Event) -> bool:
    """Whether a claim (or a change of its status) can change its person's moves (rule 10)."""
    match event:
        case ev.MemberJoined(data=d):
            return d.from_org_id is not None
        case ev.MemberLeft(data=d):
            return d.to_org_id is not None
    return False


def _row_begins(row: MembershipRow) -> date:
    """The stint's first day as `_Stint.begins` has it: the start's point."""
    return row.start_earliest or row.start_latest or NEVER


def _row_ends(row: MembershipRow) -> date:
    """The stint's end as `_Stint.ends` has it: the end's point, FOREVER when open."""
    if not row.ended:
        return FOREVER
    return row.end_earliest or row.end_latest or NEVER


def _parent_of(claim: _Claim) -> str | None:
    return claim.rec.event.data.parent_id if isinstance(claim.rec.event, ev.OrgMoved) else None


def _org_of(claim: _Claim) -> str:
    """The org a member claim is about."""
    match claim.rec.event:
        case ev.MemberJoined(data=d) | ev.MemberLeft(data=d) | ev.MemberRoleChanged(data=d):
            return d.org_id
        case ev.LeadAppointed(data=d):
            return d.org_id
    raise TypeError(f"{ev.type_name(claim.rec.event)} is not a member claim")


def fold(records: Iterable[Recorded]) -> State:
    state = State()
    for rec in records:
        state.apply(rec)
    return state


def event_id_at(position: int) -> uuid.UUID:
    """The event id `as_recorded` gives the event at a position: tests can refer to it."""
    return uuid.UUID(int=position)


def as_recorded(events: Iterable[ev.Event], first: int = 1) -> list[Recorded]:
    """Number events as the log would, with ids and times derived from their positions."""
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        Recorded(position, event_id_at(position), epoch + timedelta(seconds=position), ev.fact_key(e), e)
        for position, e in enumerate(events, start=first)
    ]
