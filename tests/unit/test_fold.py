"""Properties of the fold over generated histories.

(a) `apply` names every person and org whose rows it changed (the SQL cache re-derives
only those); (b) a state built one event at a time, queried along the way, answers like a
state folded from scratch; (c) where recording order must not matter, it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
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
from tests.histories import (
    PEOPLE,
    commuting_histories,
    histories,
)

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
