"""The State: every claim the fold has seen, indexed by the person or org it is about.

A State is complete (the pure `fold` over a whole log: an id it does not hold is an id
the log never mentioned) or partial (the projector's: it holds only the people and orgs
it loaded, and asking for another raises NotLoaded, so the projector loads it from
PostgreSQL and asks again). The rules never see the difference: they read people and
orgs through `person` and `org`.

What is kept per id is what re-deriving its rows needs, and nothing else:
- a person: the first name given for them, their aliases, their member claims (joins,
  lefts, role changes, appointments) and those claims' join groups (rule 1);
- an org: its first name, the org claims about it (added, renamed, moved, merged,
  dissolved), the lead-making claims in it (rule 4: others' lead-making claims end a
  lead role), the orgs claimed above it (parents, and what it merged into) and the orgs
  claimed merged into it, whatever those claims' status.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import msgspec

from service import events as ev
from service.fold import careers, orgs
from service.fold.claims import (
    ORG_CLAIMS,
    STATUS_EVENTS,
    Claim,
    ClaimStatus,
    Recorded,
    StoredClaim,
    lead_making,
)
from service.fold.rows import MembershipRow, MoveRow, OrgRow, PersonRow


class NotLoaded(Exception):
    """A partial State was asked about ids it does not hold: load them and ask again."""

    def __init__(
        self,
        people: Iterable[str] = (),
        orgs: Iterable[str] = (),
        events: Iterable[uuid.UUID] = (),
    ) -> None:
        self.people = frozenset(people)
        self.orgs = frozenset(orgs)
        self.events = frozenset(events)
        super().__init__(
            f"not loaded: people {set(self.people)}, orgs {set(self.orgs)}, events {set(self.events)}"
        )


@dataclass(slots=True, eq=False)
class Person:
    name: str | None = None
    aliases: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    groups: list[careers.Group] = field(default_factory=list)

    def add(self, claim: Claim) -> None:
        self.claims.append(claim)
        if isinstance(claim.event, ev.MemberJoined):
            careers.Group.add(self.groups, claim, claim.event.data)


@dataclass(slots=True, eq=False)
class Org:
    name: str | None = None
    claims: list[Claim] = field(default_factory=list)
    leads: list[Claim] = field(default_factory=list)
    ups: set[str] = field(default_factory=set)
    merged_in: set[str] = field(default_factory=set)
    # The lead-making claims in valid-time order (point, position), with those orders
    # apart for bisecting: a career looks up the first after a day, not the whole list.
    lead_orders: list[tuple[date, int]] = field(default_factory=list)
    leads_in_order: list[Claim] = field(default_factory=list)

    def add_lead(self, claim: Claim) -> None:
        self.leads.append(claim)
        i = bisect.bisect_right(self.lead_orders, (claim.at, claim.position))
        self.lead_orders.insert(i, (claim.at, claim.position))
        self.leads_in_order.insert(i, claim)

    def add(self, claim: Claim) -> None:
        self.claims.append(claim)
        match claim.event:
            case ev.OrgAdded(data=d) | ev.OrgMoved(data=d) if d.parent_id is not None:
                self.ups.add(d.parent_id)
            case ev.OrgMerged(data=d):
                self.ups.add(d.into_id)


# ---- what the projector keeps between batches ------------------------------------------


class PersonFile(msgspec.Struct, array_like=True, gc=False):
    """A person as the projector loads them: their name, aliases and claims."""

    name: str | None
    aliases: list[str]
    claims: list[StoredClaim]


class OrgFile(msgspec.Struct, array_like=True, gc=False):
    """An org as the projector loads it: its name, the org claims about it, the
    lead-making claims in it, and the orgs claimed merged into it."""

    name: str | None
    claims: list[StoredClaim]
    leads: list[StoredClaim]
    merged_in: list[str]


# Who holds a kept claim: its person, its org (org claims), and, for a lead-making claim,
# its org too (rule 4: it ends others' leads there).
PERSON: Final = "person"
ORG: Final = "org"
LEAD: Final = "lead"


@dataclass(slots=True)
class Changes:
    """What the State took in since the projector last saved it: the projector stores
    the new claims once each (they never change), the statuses that changed, and the
    names, aliases and merges of the people and orgs listed."""

    claims: list[tuple[str, str, Claim]] = field(default_factory=list)  # (holder, id, claim)
    statuses: dict[int, tuple[str, int]] = field(default_factory=dict)  # position -> (status, since)
    people: set[str] = field(default_factory=set)
    orgs: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event changed in the State: the claim it made, or whose status it changed."""

    claim: Claim | None
    new: bool
    # Ids whose names (person and org rows) the event may have set or extended.
    named_people: frozenset[str]
    named_orgs: frozenset[str]


_STATUS_OF: Final[dict[type[ev.Envelope], ClaimStatus]] = {
    ev.ClaimConfirmed: "confirmed",
    ev.ClaimDenied: "denied",
    ev.ClaimRetracted: "retracted",
}

_NOTHING: Final = Applied(None, False, frozenset(), frozenset())


class State:
    """Everything the log has said up to `position` about the ids held, and their rows."""

    def __init__(self, *, complete: bool = True, position: int = 0) -> None:
        self.position = position
        self.complete = complete
        # None: loaded, and unknown to the fold (the log never mentioned it).
        self._people: dict[str, Person | None] = {}
        self._orgs: dict[str, Org | None] = {}
        self._claims: dict[uuid.UUID, Claim] = {}
        # Events known not to be claims the fold keeps (names, pay, claims on claims).
        self._inert: set[uuid.UUID] = set()
        # What the projector will save.
        self.changes = Changes()
        # Derived, dropped when what they derive from changes.
        self._org_rows: dict[str, list[OrgRow]] = {}
        self._above: dict[str, frozenset[str]] = {}
        # The sources JSON of rows, by the claims (positions and statuses) they cite.
        self.cited: dict[tuple[tuple[int, str], ...], msgspec.Raw] = {}

    # ---- reading ----

    def person(self, person_id: str) -> Person | None:
        try:
            return self._people[person_id]
        except KeyError:
            if self.complete:
                return None
            raise NotLoaded(people=[person_id]) from None

    def org(self, org_id: str) -> Org | None:
        try:
            return self._orgs[org_id]
        except KeyError:
            if self.complete:
                return None
            raise NotLoaded(orgs=[org_id]) from None

    @property
    def people(self) -> list[str]:
        """The people held (all the log mentioned, for a complete State)."""
        return [p for p, person in self._people.items() if person is not None]

    @property
    def orgs(self) -> list[str]:
        return [o for o, org in self._orgs.items() if org is not None]

    def holds_person(self, person_id: str) -> bool:
        return person_id in self._people

    def holds_org(self, org_id: str) -> bool:
        return org_id in self._orgs

    def size(self) -> int:
        """How many claims the State holds, for the projector's bound on memory."""
        return len(self._claims)

    # ---- applying ----

    def apply(self, rec: Recorded) -> Applied:
        """Take one more event of the log, in position order.

        In a partial State, every id the event names must be loaded first (NotLoaded
        otherwise, raised before anything changes, so the event can be applied again).
        """
        if rec.position != self.position + 1:
            raise ValueError(f"position {rec.position} does not follow {self.position}")
        event = rec.event
        if isinstance(event, STATUS_EVENTS):
            applied = self._restate(event, rec.position)
        else:
            self._require(event)
            applied = self._register(Claim.recorded(rec))
        self.position = rec.position
        return applied

    def _require(self, event: ev.Event) -> None:
        people = [r.id for r in ev.referenced_people(event) if r.id not in self._people]
        orgs = [r.id for r in ev.referenced_orgs(event) if r.id not in self._orgs]
        if (people or orgs) and not self.complete:
            raise NotLoaded(people, orgs)

    def _restate(
        self, event: ev.ClaimConfirmed | ev.ClaimDenied | ev.ClaimRetracted, position: int
    ) -> Applied:
        """Rule 8: a claim's status changes from this position on."""
        target_id = event.data.event_id
        target = self._claims.get(target_id)
        if target is None:
            if self.complete or target_id in self._inert:
                return _NOTHING
            raise NotLoaded(events=[target_id])
        target.status, target.status_position = _STATUS_OF[type(event)], position
        self.changes.statuses[target.position] = (target.status, position)
        if isinstance(target.event, ORG_CLAIMS):
            self._org_rows.clear()
        return Applied(target, False, frozenset(), frozenset())

    def _register(self, claim: Claim) -> Applied:
        """Index a new claim (rules 9 and 11 for names); say which ids' names changed."""
        event = claim.event
        named_people, named_orgs = set(), set()
        for ref in ev.referenced_people(event):
            person = self._people.get(ref.id)
            if person is None:
                person = self._people[ref.id] = Person()
                named_people.add(ref.id)
            if person.name is None and ref.name is not None:
                person.name = ref.name
                named_people.add(ref.id)
        for ref in ev.referenced_orgs(event):
            org = self._orgs.get(ref.id)
            if org is None:
                org = self._orgs[ref.id] = Org()
                named_orgs.add(ref.id)
            if org.name is None and ref.name is not None:
                org.name = ref.name
                named_orgs.add(ref.id)
        self.changes.people |= named_people
        self.changes.orgs |= named_orgs
        if named_orgs:
            self._org_rows.clear()
        match event:
            case ev.PersonAdded(data=d):
                self._alias(d.person_id, d.aliases, named_people)
            case ev.PersonAliasAdded(data=d):
                self._alias(d.person_id, [d.alias], named_people)
            case ev.MemberJoined() | ev.MemberLeft() | ev.MemberRoleChanged() | ev.LeadAppointed():
                self._keep(claim, PERSON, event.data.person_id)
                self._people[event.data.person_id].add(claim)  # type: ignore[union-attr]
                if lead_making(event):
                    self._keep(claim, LEAD, event.data.org_id)
                    self._orgs[event.data.org_id].add_lead(claim)  # type: ignore[union-attr]
            case ev.OrgAdded() | ev.OrgRenamed() | ev.OrgMoved() | ev.OrgMerged() | ev.OrgDissolved():
                self._keep(claim, ORG, event.data.org_id)
                org = self._orgs[event.data.org_id]
                assert org is not None
                before = set(org.ups)
                org.add(claim)
                if isinstance(event, ev.OrgMerged):
                    into = self._orgs[event.data.into_id]
                    assert into is not None
                    into.merged_in.add(event.data.org_id)
                    self.changes.orgs.add(event.data.into_id)
                if org.ups != before:
                    self._above.clear()
                self._org_rows.clear()
            case _:
                self._inert.add(claim.event_id)
        return Applied(claim, True, frozenset(named_people), frozenset(named_orgs))

    def _keep(self, claim: Claim, holder: str, ident: str) -> None:
        self._claims[claim.event_id] = claim
        self.changes.claims.append((holder, ident, claim))

    def _alias(self, person_id: str, aliases: list[str], named: set[str]) -> None:
        person = self._people[person_id]
        assert person is not None
        known = person.aliases
        new = [a for a in dict.fromkeys(aliases) if a not in known]
        if new:
            known.extend(new)
            named.add(person_id)
            self.changes.people.add(person_id)

    # ---- loading and saving (the projector's partial State) ----

    def load_person(self, person_id: str, file: PersonFile | None) -> None:
        """Hold a person as the projector saved them (None: unknown to the fold)."""
        if person_id in self._people:
            return
        if file is None:
            self._people[person_id] = None
            return
        person = self._people[person_id] = Person(file.name, list(file.aliases))
        for kept in file.claims:
            person.add(self._claim(kept))

    def load_org(self, org_id: str, file: OrgFile | None) -> None:
        if org_id in self._orgs:
            return
        if file is None:
            self._orgs[org_id] = None
            return
        org = self._orgs[org_id] = Org(file.name, merged_in=set(file.merged_in))
        for kept in file.claims:
            org.add(self._claim(kept))
        for kept in file.leads:
            org.add_lead(self._claim(kept))
        # Nothing derived needs dropping: a partial State raises NotLoaded instead of
        # deriving from an org it does not hold, so no derived value rests on its absence.

    def mark_inert(self, event_ids: Iterable[uuid.UUID]) -> None:
        """Events the projector found are no claims the fold keeps (nothing to load)."""
        self._inert.update(event_ids)

    def _claim(self, kept: StoredClaim) -> Claim:
        """One Claim per event, shared by every id that holds it (an appointment is its
        person's and its org's): a status change then reaches both."""
        claim = self._claims.get(kept.event_id)
        if claim is None:
            claim = self._claims[kept.event_id] = Claim.stored(kept)
        return claim

    def person_header(self, person_id: str) -> tuple[str | None, list[str]]:
        """What the projector saves of a person besides their claims: name and aliases."""
        person = self._people[person_id]
        assert person is not None
        return person.name, list(person.aliases)

    def org_header(self, org_id: str) -> tuple[str | None, list[str]]:
        """What the projector saves of an org besides its claims: name, and what merged into it."""
        org = self._orgs[org_id]
        assert org is not None
        return org.name, sorted(org.merged_in)

    def take_changes(self) -> Changes:
        """What changed since the last call, for the projector to save."""
        changes, self.changes = self.changes, Changes()
        return changes

    # ---- rows ----

    def person_row(self, person_id: str) -> PersonRow | None:
        person = self.person(person_id)
        if person is None:
            return None
        return PersonRow(person_id, person.name, tuple(person.aliases))

    def membership_rows(self, person_id: str) -> list[MembershipRow]:
        return careers.memberships(self, person_id)

    def move_rows(self, person_id: str) -> list[MoveRow]:
        person = self.person(person_id)
        return [] if person is None else careers.moves(person_id, person.claims, self.cited)

    def org_rows(self, org_id: str) -> list[OrgRow]:
        cached = self._org_rows.get(org_id)
        if cached is None:
            cached = orgs.versions(self, org_id) if self.org(org_id) is not None else []
            self._org_rows[org_id] = cached
        return cached

    def ever_above(self, org_id: str) -> frozenset[str]:
        """Every org that is or was ever claimed above an org (parents, and what they
        merged into), whatever the claims' status: a superset of its ancestors on any day."""
        found = self._above.get(org_id)
        if found is None:
            seen: set[str] = set()
            org = self.org(org_id)
            todo = list(org.ups) if org is not None else []
            while todo:
                if (up := todo.pop()) not in seen:
                    seen.add(up)
                    above = self.org(up)
                    if above is not None:
                        todo.extend(above.ups)
            found = self._above[org_id] = frozenset(seen)
        return found

    def merged_into(self, org_id: str) -> set[str]:
        """The org and every org claimed merged into it, transitively (any status)."""
        seen = {org_id}
        todo = [org_id]
        while todo:
            org = self.org(todo.pop())
            for lower in org.merged_in if org is not None else ():
                if lower not in seen:
                    seen.add(lower)
                    todo.append(lower)
        return seen

    # ---- everything, for answers over the whole state ----

    def all_org_rows(self) -> list[OrgRow]:
        return [row for org_id in self.orgs for row in self.org_rows(org_id)]

    def all_membership_rows(self) -> list[MembershipRow]:
        return [row for person_id in self.people for row in self.membership_rows(person_id)]

    def all_move_rows(self) -> list[MoveRow]:
        return [row for person_id in self.people for row in self.move_rows(person_id)]

    def person_rows(self) -> dict[str, PersonRow]:
        return {p: row for p in self.people if (row := self.person_row(p)) is not None}

    def claims_of(self, person_id: str) -> Iterator[Claim]:
        person = self.person(person_id)
        return iter(() if person is None else person.claims)
