"""Properties of the fold over generated histories.

(a) `apply` names every person and org whose rows it changed (the SQL cache re-derives
only those); (b) a state built one event at a time, queried along the way, answers like a
state folded from scratch; (c) where recording order must not matter, it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import events as ev
from service.fold import (
    MembershipRow,
    MoveRow,
    OrgRow,
    PersonRow,
    SourceRef,
    State,
    as_recorded,
    event_id_at,
    fold,
)

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

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


@dataclass(frozen=True)
class Snapshot:
    people: dict[str, tuple[frozenset[MembershipRow], frozenset[MoveRow], PersonRow | None]]
    orgs: dict[str, frozenset[OrgRow]]


def snapshot(state: State) -> Snapshot:
    return Snapshot(
        people={p: (state.membership_rows(p), state.move_rows(p), state.person_row(p)) for p in state.people},
        orgs={o: state.org_rows(o) for o in state.orgs},
    )


@EXAMPLES
@given(histories())
def test_apply_names_every_id_whose_rows_changed(events: list[ev.Event]) -> None:
    records = as_recorded(events)
    state = State()
    before = snapshot(fold([]))
    for i, rec in enumerate(records):
        dirty = state.apply(rec)
        # Both sides are folded from scratch, so no cache can hide a change.
        after = snapshot(fold(records[: i + 1]))
        for person_id, rows in after.people.items():
            if person_id not in dirty.people:
                assert rows == before.people.get(person_id), (i, person_id)
        for org_id, org_rows in after.orgs.items():
            if org_id not in dirty.orgs:
                assert org_rows == before.orgs.get(org_id), (i, org_id)
        before = after


@EXAMPLES
@given(histories())
def test_applying_one_event_at_a_time_equals_folding_from_scratch(events: list[ev.Event]) -> None:
    records = as_recorded(events)
    state = State()
    for i, rec in enumerate(records):
        state.apply(rec)
        # Asking after every event fills the caches that the next apply must refresh.
        assert snapshot(state) == snapshot(fold(records[: i + 1])), i
    assert state.position == len(records)


def normal(state: State) -> tuple[frozenset[Any], ...]:
    """The rows without what recording order alone decides: positions and the choice
    between equally precise date words."""

    def ids(sources: tuple[SourceRef, ...]) -> frozenset[str]:
        return frozenset(f"{s.event_id}:{s.status}" for s in sources)

    return (
        frozenset(
            (replace(r, start_value=None, end_value=None, sources=()), ids(r.sources))
            for r in state.all_membership_rows()
        ),
        frozenset((replace(r, on_value=None, sources=()), ids(r.sources)) for r in state.all_move_rows()),
        frozenset(state.all_org_rows()),
        frozenset((r.person_id, r.name, frozenset(r.aliases)) for r in state.person_rows().values()),
    )


@EXAMPLES
@given(st.data(), commuting_histories())
def test_recording_order_does_not_change_the_answer(data: st.DataObject, events: list[ev.Event]) -> None:
    ids = [event_id_at(i) for i in range(1, len(events) + 1)]
    shuffled = data.draw(st.permutations(list(zip(ids, events, strict=True))))
    records = as_recorded(events)
    again = [
        type(rec)(position, event_id, rec.recorded_at, ev.fact_key(event), event)
        for rec, (position, (event_id, event)) in zip(records, enumerate(shuffled, start=1), strict=True)
    ]
    assert normal(fold(records)) == normal(fold(again))


@EXAMPLES
@given(st.permutations(range(4)), st.lists(st.sampled_from(PEOPLE), min_size=4, max_size=4))
def test_lead_hand_overs_do_not_depend_on_recording_order(order: list[int], people: list[str]) -> None:
    appointments = [
        ev.LeadAppointed(data=ev.LeadAppointedData(person_id=p, org_id="o1", on=f"202{k}-03"))
        for k, p in enumerate(people)
    ]
    joins = [ev.MemberJoined(data=ev.MemberJoinedData(person_id=p, org_id="o1", on="2019")) for p in PEOPLE]
    in_order = fold(as_recorded([*joins, *appointments]))
    shuffled = fold(as_recorded([*joins, *(appointments[i] for i in order)]))

    def leads(state: State) -> set[tuple[str, date | None, date | None]]:
        return {
            (r.person_id, r.seg_from, r.seg_until) for r in state.all_membership_rows() if r.role == "lead"
        }

    assert leads(in_order) == leads(shuffled)
    # On any day at most one person holds the lead, whatever the order.
    for year in range(2020, 2025):
        day = date(year, 6, 1)
        holders = {
            p
            for p, since, until in leads(shuffled)
            if (since is None or since <= day) and (until is None or day < until)
        }
        assert len(holders) <= 1
