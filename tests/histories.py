"""Generated event histories, shared by the fold's property tests and the SQL-equals-fold test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from service import events as ev
from tests.reference import event_id_at

PEOPLE = ["ada", "bob", "cy"]
PERSON_NAMES = {"ada": "Ada", "bob": "Bob", "cy": "Cy"}
ORGS = ["o1", "o2", "o3"]
ORG_NAMES = {"o1": "One", "o2": "Two", "o3": "Three"}
DAYS = [date(2020, 1, 1) + timedelta(days=37 * k) for k in range(24)]
SOURCES = [
    None,
    *(
        ev.Source(url=f"https://example.org/{k}", published_at=day.isoformat())
        for k, day in enumerate(DAYS[::5])
    ),
]
ROLES: list[ev.Role] = ["member", "lead", "founder", "advisor"]
KINDS: list[ev.OrgKind] = ["company", "lab", "team"]


@st.composite
def on_dates(draw: st.DrawFn) -> ev.OnDate:
    """A partial date of any precision, often overlapping the others drawn."""
    day = draw(st.sampled_from(DAYS))
    match draw(st.sampled_from(["day", "month", "year", "undated", "bounded"])):
        case "day":
            return day.isoformat()
        case "month":
            return day.isoformat()[:7]
        case "year":
            return day.isoformat()[:4]
        case "undated":
            latest = draw(st.none() | st.just(day.isoformat()))
            return ev.DateRange(latest=latest, text="recently")
    return ev.DateRange(value=day.isoformat()[:7], earliest=day.isoformat())


@dataclass
class Draws:
    """How to draw one event's parts: freely, or (for order tests) one distinct day each."""

    draw: st.DrawFn
    days: list[date] | None = None

    def on(self) -> ev.OnDate:
        if self.days is None:
            return self.draw(on_dates())
        return self.days.pop().isoformat()

    def person(self) -> str:
        return self.draw(st.sampled_from(PEOPLE))

    def org(self) -> str:
        return self.draw(st.sampled_from(ORGS))

    def maybe_org(self) -> str | None:
        return self.draw(st.sampled_from([None, *ORGS]))

    def person_name(self, person: str) -> str | None:
        return self.draw(st.sampled_from([None, PERSON_NAMES[person]]))

    def org_name(self, org: str) -> str | None:
        return self.draw(st.sampled_from([None, ORG_NAMES[org]]))

    def envelope(self) -> dict[str, Any]:
        return {
            "status": self.draw(st.sampled_from(["rumor", "reported", "reported", "confirmed"])),
            "source": self.draw(st.sampled_from(SOURCES)),
        }


def draw_event(d: Draws, kind: str, position: int) -> ev.Event:
    p, o = d.person(), d.org()
    match kind:
        case "joined":
            data = ev.MemberJoinedData(
                person_id=p,
                person_name=d.person_name(p),
                org_id=o,
                org_name=d.org_name(o),
                role=d.draw(st.sampled_from(ROLES)),
                from_org_id=d.maybe_org(),
                on=d.on(),
            )
            return ev.MemberJoined(data=data, **d.envelope())
        case "left":
            data_left = ev.MemberLeftData(
                person_id=p, person_name=d.person_name(p), org_id=o, to_org_id=d.maybe_org(), on=d.on()
            )
            return ev.MemberLeft(data=data_left, **d.envelope())
        case "role_changed":
            role = d.draw(st.sampled_from(ROLES))
            data_role = ev.MemberRoleChangedData(person_id=p, org_id=o, role=role, title="T", on=d.on())
            return ev.MemberRoleChanged(data=data_role, **d.envelope())
        case "appointed":
            data_lead = ev.LeadAppointedData(person_id=p, person_name=d.person_name(p), org_id=o, on=d.on())
            return ev.LeadAppointed(data=data_lead, **d.envelope())
        case "org_added":
            kind_ = d.draw(st.sampled_from(KINDS))
            on = d.on() if d.draw(st.booleans()) else None
            data_org = ev.OrgAddedData(
                org_id=o, name=ORG_NAMES[o], kind=kind_, parent_id=d.maybe_org(), on=on
            )
            return ev.OrgAdded(data=data_org, **d.envelope())
        case "placed":
            parent = d.draw(st.sampled_from(ORGS))
            data_placed = ev.OrgAddedData(org_id=o, name=ORG_NAMES[o], kind="team", parent_id=parent)
            return ev.OrgAdded(data=data_placed)
        case "moved":
            return ev.OrgMoved(data=ev.OrgMovedData(org_id=o, parent_id=d.org(), on=d.on()), **d.envelope())
        case "renamed":
            name = d.draw(st.sampled_from(["Alpha", "Beta"]))
            return ev.OrgRenamed(data=ev.OrgRenamedData(org_id=o, name=name, on=d.on()), **d.envelope())
        case "merged":
            return ev.OrgMerged(data=ev.OrgMergedData(org_id=o, into_id=d.org(), on=d.on()), **d.envelope())
        case "dissolved":
            return ev.OrgDissolved(data=ev.OrgDissolvedData(org_id=o, on=d.on()), **d.envelope())
        case "person_added":
            return ev.PersonAdded(
                data=ev.PersonAddedData(person_id=p, name=PERSON_NAMES[p], aliases=["x", "y"])
            )
        case "alias":
            alias = d.draw(st.sampled_from(["x", "z"]))
            return ev.PersonAliasAdded(data=ev.PersonAliasAddedData(person_id=p, alias=alias))
    # A claim on an earlier event (or, now and then, on itself or an id never logged).
    claim = ev.ClaimData(event_id=event_id_at(d.draw(st.integers(1, position + 1))))
    match kind:
        case "denied":
            return ev.ClaimDenied(data=claim)
        case "retracted":
            return ev.ClaimRetracted(data=claim)
    return ev.ClaimConfirmed(data=claim)


MEMBER_KINDS = ["joined", "joined", "joined", "left", "left", "role_changed", "appointed", "appointed"]
ORG_KINDS = ["org_added", "org_added", "moved", "renamed", "merged", "dissolved"]
OTHER_KINDS = ["person_added", "alias", "denied", "denied", "retracted", "confirmed"]


@st.composite
def histories(draw: st.DrawFn) -> list[ev.Event]:
    # A few orgs placed first make later events meet a structure more often than chance.
    kinds = draw(st.lists(st.just("placed"), max_size=3))
    kinds += draw(st.lists(st.sampled_from(MEMBER_KINDS + ORG_KINDS + OTHER_KINDS), min_size=2, max_size=24))
    d = Draws(draw)
    return [draw_event(d, kind, i) for i, kind in enumerate(kinds, start=1)]


@st.composite
def commuting_histories(draw: st.DrawFn) -> list[ev.Event]:
    """Histories whose answer cannot depend on recording order: no claims on claims, a
    distinct day for every dated event, and no fact reported twice (the grouping of
    several reports of one fact follows their positions)."""
    kinds = draw(st.lists(st.sampled_from(MEMBER_KINDS + ORG_KINDS), min_size=1, max_size=16))
    d = Draws(
        draw, days=draw(st.permutations([date(2020, 1, 1) + timedelta(days=11 * k) for k in range(80)]))
    )
    events: list[ev.Event] = []
    facts: set[tuple[str, ...]] = set()
    for i, kind in enumerate(kinds, start=1):
        event = draw_event(d, kind, i)
        match event:
            case ev.MemberJoined(data=j):
                fact: tuple[str, ...] = ("joined", j.person_id, j.org_id, j.role)
            case ev.MemberLeft(data=left):
                fact = ("left", left.person_id, left.org_id)
            case ev.OrgAdded(data=o):
                fact = ("org", o.org_id)
            case _:
                fact = ("event", str(i))
        if fact not in facts:
            facts.add(fact)
            events.append(event)
    return events


@st.composite
def lead_histories(draw: st.DrawFn) -> list[ev.Event]:
    """Histories where leads meet: joins as lead, appointments, role changes to lead and
    merges, on a few shared days, so that two claims to one lead often overlap."""
    days = [date(2020, 1, 1), date(2020, 6, 1), date(2021, 1, 1), date(2021, 6, 1)]
    events: list[ev.Event] = []
    for _ in range(draw(st.integers(2, 12))):
        p = draw(st.sampled_from(PEOPLE))
        o = draw(st.sampled_from(ORGS[:2]))
        day = draw(st.sampled_from(days))
        choices: list[ev.OnDate] = [
            day.isoformat(),
            day.isoformat()[:7],
            ev.DateRange(latest=day.isoformat()),
        ]
        on = draw(st.sampled_from(choices))
        match draw(st.sampled_from(["joined", "joined", "appointed", "role", "merged", "left"])):
            case "joined":
                role: ev.Role = draw(st.sampled_from(["lead", "member"]))
                events.append(
                    ev.MemberJoined(data=ev.MemberJoinedData(person_id=p, org_id=o, role=role, on=on))
                )
            case "appointed":
                events.append(ev.LeadAppointed(data=ev.LeadAppointedData(person_id=p, org_id=o, on=on)))
            case "role":
                events.append(
                    ev.MemberRoleChanged(
                        data=ev.MemberRoleChangedData(person_id=p, org_id=o, role="lead", on=on)
                    )
                )
            case "merged":
                events.append(ev.OrgMerged(data=ev.OrgMergedData(org_id=ORGS[0], into_id=ORGS[1], on=on)))
            case _:
                events.append(ev.MemberLeft(data=ev.MemberLeftData(person_id=p, org_id=o, on=on)))
    return events
