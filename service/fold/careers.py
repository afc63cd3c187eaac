"""A person's career: their stints in orgs, derived by applying their claims (rules 1 to 6, 10).

`memberships(state, person_id)` replays, in valid-time order, the person's own claims
and the claims of others and of orgs that can change their stints (others' lead-making
claims in orgs they may lead, merges and dissolutions of the orgs they are in), and
returns one row per role segment of each stint. Each `Career` method is one rule.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import msgspec

from service import dates
from service import events as ev
from service.dates import DayRange
from service.fold.claims import FOREVER, NEVER, Claim, ClaimStatus, at, combined, lead_making, org_of, sources
from service.fold.rows import MembershipRow, MoveRow, version_on

if TYPE_CHECKING:
    from service.fold.state import State

# A role segment: from which day, which role, which title, and the order (point,
# position) of the claim that made it, which decides between two claims to one lead.
Segment = tuple[date, str, str | None, tuple[date, int]]


@dataclass(slots=True, eq=False)
class Stint:
    org_id: str
    fact_key: str
    index: int
    start: DayRange
    start_value: str | None
    status: str
    segments: list[Segment]
    claims: list[Claim]
    lefts: list[Claim] = field(default_factory=list)
    # The cascading left, merge or dissolution that ended it, when that came first.
    forced: Claim | None = None
    # The end is asked for at every step of a career; it changes only when a left is
    # added or `forced` is set, so it is kept with what it was computed from.
    _end: tuple[DayRange, str | None] | None = None
    _end_from: tuple[int, Claim | None] | None = None
    # The start never changes once the stint exists: its point is computed once.
    begins: date = field(init=False)

    def __post_init__(self) -> None:
        self.begins = at(self.start)

    def end(self) -> tuple[DayRange, str | None] | None:
        basis = (len(self.lefts), self.forced)
        if self._end_from == basis:
            return self._end
        ends: list[tuple[DayRange, str | None]] = []
        if self.lefts:
            ends.append(combined(self.lefts))
        if self.forced is not None:
            ends.append((self.forced.on, self.forced.value))
        self._end = min(ends, key=lambda e: at(e[0])) if ends else None
        self._end_from = basis
        return self._end

    def ends(self) -> date:
        end = self.end()
        return FOREVER if end is None else at(end[0])

    def open_at(self, day: date) -> bool:
        return self.begins <= day < self.ends()

    def may_be_open_at(self, day: date) -> bool:
        """Open on the day, or may be: a start with no earliest day may have come by then."""
        return (self.start.earliest is None or self.start.earliest <= day) and day < self.ends()

    def role_at(self, day: date) -> tuple[str, str | None]:
        held = self.segments[0]
        for segment in self.segments:
            if segment[0] <= day:
                held = segment
        return held[1], held[2]

    def lead_claimed_at(self, day: date) -> tuple[date, int] | None:
        """The order of the lead-making claim whose lead segment is in effect on a day,
        if one is: a segment from that day or before, the first one counting from the
        stint's start (a lead claim may be dated before the start it comes with)."""
        held: Segment | None = None
        for segment in self.segments:
            if (self.begins if segment[0] == NEVER else segment[0]) <= day:
                held = segment
        return held[3] if held is not None and held[1] == "lead" else None

    def rows(
        self, person_id: str, cited_before: dict[tuple[tuple[int, str], ...], msgspec.Raw]
    ) -> Iterable[MembershipRow]:
        end = self.end()
        claims = [*self.claims, *self.lefts, *([self.forced] if self.forced else [])]
        cited = sources(claims, cited_before)
        segments = _segments(self.segments)
        for i, (since, role, title, _) in enumerate(segments):
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
                stint=self.claims[0].position,
                sources=cited,
            )


def _segments(segments: list[Segment]) -> list[Segment]:
    """Role segments in time order: a later change on the same day replaces an earlier
    one, and a change to the role and title already held is no boundary."""
    result: list[Segment] = []
    for segment in sorted(segments, key=lambda s: s[0]):
        if result and result[-1][0] == segment[0]:
            result.pop()
        if result and result[-1][1:3] == segment[1:3]:
            continue
        result.append(segment)
    return result


@dataclass(slots=True, eq=False)
class Group:
    """Rule 1: the join claims of one stint, grouped as they are recorded.

    Grouping depends on the claims' ranges alone, so it is kept up to date as claims
    arrive instead of being redone at every derivation; what the group says of its
    stint (start, status, initial role and title) depends on their statuses too, and is
    recomputed only when one of those changed.
    """

    org_id: str
    fact_key: str
    common: DayRange
    claims: list[Claim]
    _basis: list[ClaimStatus] = field(default_factory=list)
    _made: tuple[DayRange, str | None, str, Segment] | None = None

    @staticmethod
    def add(groups: list[Group], claim: Claim, data: ev.MemberJoinedData) -> None:
        """Join the first group of the claim's fact whose range it overlaps, or start one."""
        for group in groups:
            if group.org_id == data.org_id and group.fact_key == claim.fact_key:
                both = dates.intersect(group.common, claim.on)
                if both is not None:
                    group.claims.append(claim)
                    group.common = both
                    return
        groups.append(Group(data.org_id, claim.fact_key, claim.on, [claim]))

    def stint(self, index: int) -> Stint:
        basis = [c.status for c in self.claims]
        if self._made is None or basis != self._basis:
            claims = self.claims
            live = [c for c in claims if c.live]
            start, value = combined(live or claims)
            status: str
            if live:
                status = max(live, key=lambda c: ev.STATUS_RANK[c.status]).status
            else:
                status = max(claims, key=lambda c: c.status_position).status
            first = claims[0].event.data
            assert isinstance(first, ev.MemberJoinedData)
            titles = [t for c in live or claims if (t := getattr(c.event.data, "title", None)) is not None]
            order = (at(start), min(c.position for c in claims))
            self._made = start, value, status, (NEVER, first.role, titles[0] if titles else None, order)
            self._basis = basis
        start, value, status, segment = self._made
        return Stint(self.org_id, self.fact_key, index, start, value, status, [segment], list(self.claims))


def _start_order(stint: Stint) -> tuple[date, str, int]:
    # Stints starting the same day differ by fact_key; ordering on it before the index
    # keeps the choice independent of the order the claims were recorded in.
    return stint.begins, stint.fact_key, stint.index


class Career:
    """One person's stints, built by applying their claims in valid-time order."""

    def __init__(self, state: State, person_id: str, groups: list[Group]) -> None:
        self.state = state
        self.person_id = person_id
        self.stints = [group.stint(i) for i, group in enumerate(groups)]
        self._above: frozenset[str] = frozenset()
        self._above_for = -1

    def _new(self, org_id: str, origin: Claim, role: str, title: str | None) -> None:
        self.stints.append(
            Stint(
                org_id,
                origin.fact_key,
                len(self.stints),
                origin.on,
                origin.value,
                origin.status,
                [(NEVER, role, title, (origin.at, origin.position))],
                [origin],
            )
        )

    def chosen(self, org_id: str, when: DayRange) -> list[Stint]:
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

    def left(self, claim: Claim, data: ev.MemberLeftData) -> None:
        """Rule 2: a left ends the chosen stint, and the stints in the org's sub-orgs."""
        for stint in self.chosen(data.org_id, claim.on):
            stint.lefts.append(claim)
        # Cheap and usually false: could the left's org ever be above any stint's org?
        if data.org_id not in self._above_any():
            return
        day = claim.at
        for stint in self.stints:
            if (
                stint.org_id != data.org_id
                and data.org_id in self.state.ever_above(stint.org_id)
                and stint.begins < day < stint.ends()
                and data.org_id in ancestors(self.state, stint.org_id, day)
            ):
                stint.forced = claim

    def _above_any(self) -> frozenset[str]:
        """Every org ever claimed above the orgs of this career's stints (kept while no
        stint is added: an appointment or a merge may add one)."""
        if self._above_for != len(self.stints):
            found: set[str] = set()
            for org_id in {s.org_id for s in self.stints}:
                found |= self.state.ever_above(org_id)
            self._above, self._above_for = frozenset(found), len(self.stints)
        return self._above

    def role_changed(self, claim: Claim, data: ev.MemberRoleChangedData) -> None:
        """Rule 3: a new role segment of the chosen stint."""
        for stint in self.chosen(data.org_id, claim.on):
            stint.segments.append((claim.at, data.role, data.title, (claim.at, claim.position)))
            stint.claims.append(claim)

    def appointed(self, claim: Claim, data: ev.LeadAppointedData) -> None:
        """Rule 4: the lead role from the appointment's day, in every stint that may be
        open then (one whose start may have come by that day), else in a new stint."""
        day = claim.at
        covering = [s for s in self.stints if s.org_id == data.org_id and s.may_be_open_at(day)]
        for stint in covering:
            stint.segments.append((day, "lead", data.title, (day, claim.position)))
            stint.claims.append(claim)
        if not covering:
            self._new(data.org_id, claim, "lead", data.title)

    def lead_taken(self, claim: Claim, org_id: str) -> None:
        """Rule 4: another's later lead-making claim ends this person's lead role there,
        from its day."""
        day, order = claim.at, (claim.at, claim.position)
        for stint in self.stints:
            if stint.org_id == org_id and day < stint.ends():
                held = stint.lead_claimed_at(day)
                if held is not None and held < order:
                    stint.segments.append((day, "member", None, order))

    def merged(self, claim: Claim, data: ev.OrgMergedData) -> None:
        """Rule 5: stints open in the org end, and continue in the org it merged into."""
        day = claim.at
        # The latest-starting stint goes first, so its role is the one carried over.
        carried = [s for s in self.stints if s.org_id == data.org_id and s.open_at(day)]
        for stint in sorted(carried, key=_start_order, reverse=True):
            stint.forced = claim
            if not any(s.org_id == data.into_id and s.open_at(day) for s in self.stints):
                role, title = stint.role_at(day)
                # The merged org's lead does not lead the org it merged into.
                self._new(data.into_id, claim, *(("member", None) if role == "lead" else (role, title)))

    def dissolved(self, claim: Claim, data: ev.OrgDissolvedData) -> None:
        """Rule 6: stints open in the org end."""
        for stint in self.stints:
            if stint.org_id == data.org_id and stint.open_at(claim.at):
                stint.forced = claim

    def apply(self, claim: Claim) -> None:
        match claim.event:
            case ev.MemberJoined(data=d) | ev.MemberRoleChanged(data=d) if d.person_id != self.person_id:
                self.lead_taken(claim, d.org_id)
            case ev.LeadAppointed(data=d) if d.person_id != self.person_id:
                self.lead_taken(claim, d.org_id)
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

    def rows(self) -> list[MembershipRow]:
        return [row for stint in self.stints for row in stint.rows(self.person_id, self.state.cited)]


def memberships(state: State, person_id: str) -> list[MembershipRow]:
    """Every membership row of a person: their career replayed in valid-time order."""
    person = state.person(person_id)
    if person is None:
        return []
    claims = person.claims
    career = Career(state, person_id, person.groups)
    steps = [c for c in claims if c.live and not isinstance(c.event, ev.MemberJoined)]
    own = {c.position for c in claims}
    # The orgs this person's stints can be in: those they have claims in, and those
    # these merge into, since a merge carries stints over. Where each can first begin:
    # no stint starts before its claims' or merge's point.
    first: dict[str, date] = {}
    for c in claims:
        org_id = org_of(c.event)
        first[org_id] = min(c.at, first.get(org_id, FOREVER))
    todo = list(first)
    while todo:
        org = state.org(todo.pop())
        for claim in org.claims if org is not None else ():
            if not claim.live:
                continue
            match claim.event:
                case ev.OrgMerged(data=d):
                    steps.append(claim)
                    if d.into_id not in first:
                        todo.append(d.into_id)
                    first[d.into_id] = min(claim.at, first.get(d.into_id, FOREVER))
                case ev.OrgDissolved():
                    steps.append(claim)
    steps.extend(_leads_taken(state, career, claims, own))
    for step in sorted(steps, key=lambda c: (c.at, c.position)):
        career.apply(step)
    return career.rows()


def _leads_taken(state: State, career: Career, claims: list[Claim], own: set[int]) -> list[Claim]:
    """Others' lead-making claims that may end this person's lead (rule 4), and no more.

    A lead role comes only from the person's own lead-making claims (a merge carries no
    lead over), each in effect from its own order (point, position); another's claim ends
    it only when it comes after it, and once ended it stays ended until the person's next
    own lead claim. So of the others' claims in an org, only the first after each of the
    person's own lead claims there can change anything. Skipping the rest keeps a
    career's cost proportional to the career, not to the history of the orgs it went
    through.
    """
    starts: dict[str, list[tuple[date, int]]] = {}
    for stint in career.stints:
        if stint.segments[0][1] == "lead":  # a join as lead, or an appointment's own stint
            starts.setdefault(stint.org_id, []).append(stint.segments[0][3])
    for c in claims:
        if c.live and lead_making(c.event) and not isinstance(c.event, ev.MemberJoined):
            starts.setdefault(org_of(c.event), []).append((c.at, c.position))
    taken: dict[int, Claim] = {}
    for org_id, mine in starts.items():
        org = state.org(org_id)
        if org is None:
            continue
        for start in mine:
            i = bisect.bisect_right(org.lead_orders, start)
            while i < len(org.leads_in_order):
                other = org.leads_in_order[i]
                if other.live and other.position not in own:
                    taken[other.position] = other
                    break
                i += 1
    return list(taken.values())


def ancestors(state: State, org_id: str, day: date) -> set[str]:
    """The orgs above an org on a day, following each version's parent."""
    found: set[str] = set()
    row = version_on(state.org_rows(org_id), day)
    while row is not None and row.parent_id is not None and row.parent_id not in found:
        found.add(row.parent_id)
        row = version_on(state.org_rows(row.parent_id), day)
    return found


def moves(
    person_id: str, claims: list[Claim], cited: dict[tuple[tuple[int, str], ...], msgspec.Raw]
) -> list[MoveRow]:
    """Rule 10: one move per (person, from, to), however many claims report it."""
    reports: dict[tuple[str, str], tuple[list[Claim], list[Claim]]] = {}
    for claim in claims:
        if not claim.live:
            continue
        match claim.event:
            case ev.MemberJoined(data=d) if d.from_org_id is not None:
                reports.setdefault((d.from_org_id, d.org_id), ([], []))[0].append(claim)
            case ev.MemberLeft(data=d) if d.to_org_id is not None:
                reports.setdefault((d.org_id, d.to_org_id), ([], []))[1].append(claim)
    rows = []
    for (from_id, to_id), (joins, lefts) in sorted(reports.items()):
        on, value = combined(joins or lefts)
        rows.append(
            MoveRow(person_id, from_id, to_id, value, on.earliest, on.latest, sources(joins + lefts, cited))
        )
    return rows
