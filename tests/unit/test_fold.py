"""Properties of the fold over generated histories.

(a) `apply` names every person and org whose rows it changed (the SQL cache re-derives
only those); (b) a state built one event at a time, queried along the way, answers like a
state folded from scratch; (c) where recording order must not matter, it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec
import pytest
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
from tests.unit import test_fold_rules as rules

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
        # Rows derived before the event, as the projection has them: apply may consult
        # them to rule people out, so Dirty is checked with them in place.
        snapshot(state)
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
            (msgspec.structs.replace(r, start_value=None, end_value=None, sources=()), ids(r.sources))
            for r in state.all_membership_rows()
        ),
        frozenset(
            (msgspec.structs.replace(r, on_value=None, sources=()), ids(r.sources))
            for r in state.all_move_rows()
        ),
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


def _structure_cases() -> dict[str, list[ev.Event]]:
    """Histories where a structural event far above a person changes their rows: only a
    left cascading from above ties a career to what sits over its orgs, so these are
    the cases Dirty must not narrow away."""
    base = [
        rules.org("c1", "company"),
        rules.org("c2", "company"),
        rules.org("l1", "lab", parent_id="c1"),
        rules.org("l2", "lab", parent_id="c2"),
        rules.org("t1", parent_id="l1"),
        rules.joined("bob", "t1", "2020-01"),
        rules.left("bob", "c1", "2021-06"),  # cascades down to t1 while t1 sits under c1
    ]
    return {
        "moved away from the leaving org": [*base, rules.moved("t1", "l2", "2021-01")],
        "moved under the leaving org": [
            *base[:5],
            rules.org("t2", parent_id="l2"),
            rules.joined("bob", "t2", "2020-01"),
            rules.left("bob", "c1", "2021-06"),
            rules.moved("t2", "l1", "2021-01"),
        ],
        "parent merged away from it": [*base, rules.merged("l1", "l2", "2021-01")],
        "parent dissolved": [*base, rules.dissolved("l1", "2021-01")],
        "the move denied": [*base, rules.moved("t1", "l2", "2021-01"), rules.denied(8)],
        "merged while a stint is open in it": [
            rules.joined("bob", "t1", "2020-01", org_name="T1"),
            rules.merged("t1", "t2", "2021-01", into_name="T2"),
        ],
        "ended before a stint that a left from above ends": [
            rules.org("c1", "company"),
            rules.org("t1", parent_id="c1"),
            rules.joined("bob", "t1", "2022-01"),
            rules.left("bob", "c1", "2022-06"),
            rules.dissolved("t1", "2021-01"),
        ],
        "a new parent for an org added late": [
            rules.org("c1", "company"),
            rules.joined("bob", "t9", "2020-01", org_name="T9"),
            rules.left("bob", "c1", "2021-06"),
            rules.org("t9", parent_id="c1"),
        ],
    }


@pytest.mark.parametrize("case", sorted(_structure_cases()))
def test_dirty_names_careers_a_far_structural_change_reaches(case: str) -> None:
    records = as_recorded(_structure_cases()[case])
    state = fold(records[:-1])
    before = snapshot(state)  # the rows in place, as the projection has them
    dirty = state.apply(records[-1])
    after = snapshot(fold(records))
    assert after.people["bob"] != before.people["bob"]  # the case is one where it matters
    assert "bob" in dirty.people
    assert snapshot(state) == after
