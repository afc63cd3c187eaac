"""The fold's rules, one hand-written scenario each, boundaries included.

Each scenario is a short log; the questions are asked through `service.answers`, the same
functions the SQL cache answers with.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from service import answers
from service import events as ev
from service.answers import MinStatus, RosterEntry
from service.fold import MembershipRow, SourceRef, State, fold, row_key
from tests import reference
from tests.reference import as_recorded, cited, event_id_at

SOURCE = ev.Source(url="https://example.org/1", outlet="Outlet One", published_at="2025-07-08")
OTHER = ev.Source(url="https://example.org/2", outlet="Outlet Two", published_at="2025-07-09", lang="en")


def d(text: str) -> date:
    return date.fromisoformat(text)


def _envelope(kw: dict[str, Any]) -> dict[str, Any]:
    return {"status": kw.pop("status", "reported"), "source": kw.pop("source", SOURCE)}


def _name(person: str) -> str:
    return person.replace("-", " ").title()


def org(org_id: str, kind: ev.OrgKind = "team", **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    name = kw.pop("name", org_id.upper())
    return ev.OrgAdded(data=ev.OrgAddedData(org_id=org_id, name=name, kind=kind, **kw), **envelope)


def joined(person: str, org_id: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    data = ev.MemberJoinedData(person_id=person, person_name=_name(person), org_id=org_id, on=on, **kw)
    return ev.MemberJoined(data=data, **envelope)


def left(person: str, org_id: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    data = ev.MemberLeftData(person_id=person, person_name=_name(person), org_id=org_id, on=on, **kw)
    return ev.MemberLeft(data=data, **envelope)


def role_changed(person: str, org_id: str, role: ev.Role, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    data = ev.MemberRoleChangedData(person_id=person, org_id=org_id, role=role, on=on, **kw)
    return ev.MemberRoleChanged(data=data, **envelope)


def appointed(person: str, org_id: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    data = ev.LeadAppointedData(person_id=person, person_name=_name(person), org_id=org_id, on=on, **kw)
    return ev.LeadAppointed(data=data, **envelope)


def merged(org_id: str, into_id: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    return ev.OrgMerged(data=ev.OrgMergedData(org_id=org_id, into_id=into_id, on=on, **kw), **envelope)


def dissolved(org_id: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    return ev.OrgDissolved(data=ev.OrgDissolvedData(org_id=org_id, on=on), **envelope)


def moved(org_id: str, parent_id: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    return ev.OrgMoved(data=ev.OrgMovedData(org_id=org_id, parent_id=parent_id, on=on), **envelope)


def renamed(org_id: str, name: str, on: ev.OnDate, **kw: Any) -> ev.Event:
    envelope = _envelope(kw)
    return ev.OrgRenamed(data=ev.OrgRenamedData(org_id=org_id, name=name, on=on), **envelope)


def denied(position: int) -> ev.Event:
    return ev.ClaimDenied(data=ev.ClaimData(event_id=event_id_at(position)))


def retracted(position: int) -> ev.Event:
    return ev.ClaimRetracted(data=ev.ClaimData(event_id=event_id_at(position)))


def confirmed(position: int) -> ev.Event:
    return ev.ClaimConfirmed(data=ev.ClaimData(event_id=event_id_at(position)))


def build(*events: ev.Event) -> State:
    return fold(as_recorded(events))


def roster(
    state: State, org_id: str, on: str, suborgs: bool = False, min_status: MinStatus = "reported"
) -> answers.Roster:
    found = reference.answer_roster(state, org_id, d(on), include_suborgs=suborgs, min_status=min_status)
    assert found is not None
    return found


def members(state: State, org_id: str, on: str, **kw: Any) -> list[str]:
    return [e.person_id for e in roster(state, org_id, on, **kw).members]


def possible(state: State, org_id: str, on: str, **kw: Any) -> list[str]:
    return [e.person_id for e in roster(state, org_id, on, **kw).possible]


def entry(state: State, org_id: str, on: str, person: str) -> RosterEntry:
    [found] = [e for e in roster(state, org_id, on).members if e.person_id == person]
    return found


def timeline(state: State, person: str) -> answers.Timeline:
    found = reference.answer_timeline(state, person)
    assert found is not None
    return found


def tree_ids(state: State, org_id: str, on: str) -> dict[str, Any]:
    found = reference.answer_tree(state, org_id, d(on))
    assert found is not None

    def walk(nodes: list[answers.TreeNode]) -> dict[str, Any]:
        return {n.org_id: walk(n.children) for n in nodes}

    return {found.org_id: walk(found.children)}


# ---- rule 1: starts, precision, several sources --------------------------------------------


def test_the_day_of_a_move_belongs_to_the_new_org() -> None:
    state = build(
        joined("ada", "a", "2020-01-01"),
        left("ada", "a", "2025-07-08", to_org_id="b"),
        joined("ada", "b", "2025-07-08", from_org_id="a"),
    )
    assert members(state, "a", "2025-07-07") == ["ada"]
    assert members(state, "b", "2025-07-07") == []
    assert members(state, "a", "2025-07-08") == []
    assert possible(state, "a", "2025-07-08") == []
    assert members(state, "b", "2025-07-08") == ["ada"]


def test_a_month_start_is_possible_during_the_month_and_certain_after() -> None:
    state = build(joined("ada", "a", "2025-07"))
    assert (members(state, "a", "2025-06-30"), possible(state, "a", "2025-06-30")) == ([], [])
    assert (members(state, "a", "2025-07-01"), possible(state, "a", "2025-07-01")) == ([], ["ada"])
    assert (members(state, "a", "2025-07-30"), possible(state, "a", "2025-07-30")) == ([], ["ada"])
    # Whoever joined in July has joined by its last day.
    assert (members(state, "a", "2025-07-31"), possible(state, "a", "2025-07-31")) == (["ada"], [])


def test_a_year_end_is_possible_through_the_year() -> None:
    state = build(joined("ada", "a", "2020-03-01"), left("ada", "a", "2025"))
    assert members(state, "a", "2024-12-31") == ["ada"]
    assert possible(state, "a", "2025-01-01") == ["ada"]
    assert possible(state, "a", "2025-12-30") == ["ada"]
    # Whoever left in 2025 has left by its last day.
    assert (members(state, "a", "2025-12-31"), possible(state, "a", "2025-12-31")) == ([], [])


def test_a_date_with_no_value_runs_from_minus_infinity_to_the_published_day() -> None:
    state = build(joined("ada", "a", ev.DateRange(text="recently")))
    assert possible(state, "a", "1990-01-01") == ["ada"]
    assert possible(state, "a", "2025-07-07") == ["ada"]
    assert members(state, "a", "2025-07-08") == ["ada"]
    start = entry(state, "a", "2025-07-08", "ada").start
    assert (start.value, start.earliest, start.latest) == (None, None, d("2025-07-08"))


def test_a_member_claim_without_on_is_undated_like_a_date_without_value() -> None:
    """Issue 12: `on` left out of a member claim means undated, (-inf, published_at]."""
    left_out = build(
        joined("ada", "a", None),  # type: ignore[arg-type]
        appointed("bob", "a", None),  # type: ignore[arg-type]
    )
    worded = build(
        joined("ada", "a", ev.DateRange(text="recently")),
        appointed("bob", "a", ev.DateRange(text="recently")),
    )
    for day in ("1990-01-01", "2025-07-07", "2025-07-08", "2030-01-01"):
        assert roster(left_out, "a", day) == roster(worded, "a", day), day
    assert members(left_out, "a", "2025-07-08") == ["ada", "bob"]
    assert possible(left_out, "a", "2025-07-07") == ["ada", "bob"]
    # An undated departure ends the stint by the published day, as a worded one does.
    gone = build(joined("ada", "a", "2020-01-01"), left("ada", "a", None))  # type: ignore[arg-type]
    assert possible(gone, "a", "2021-01-01") == ["ada"] and possible(gone, "a", "2025-07-08") == []


def test_a_date_with_no_value_and_no_source_never_makes_a_member() -> None:
    state = build(joined("ada", "a", ev.DateRange(), source=None))
    assert members(state, "a", "2100-01-01") == []
    assert possible(state, "a", "2100-01-01") == ["ada"]


def test_an_announced_start_after_publication_keeps_its_bounds() -> None:
    state = build(joined("ada", "a", ev.DateRange(earliest="2025-09-01")))
    assert possible(state, "a", "2025-08-31") == []
    assert possible(state, "a", "2025-09-01") == ["ada"]
    assert members(state, "a", "2030-01-01") == []


def test_the_same_fact_from_two_outlets_is_one_entry_with_both_sources() -> None:
    state = build(joined("ada", "a", "2025-07"), joined("ada", "a", "2025-07-08", source=OTHER))
    assert members(state, "a", "2025-07-08") == ["ada"]
    found = entry(state, "a", "2025-07-08", "ada")
    assert [s.url for s in cited(found)] == [SOURCE.url, OTHER.url]
    assert [s.position for s in cited(found)] == [1, 2]
    assert (found.start.value, found.start.earliest, found.start.latest) == (
        "2025-07-08",
        d("2025-07-08"),
        d("2025-07-08"),
    )
    assert len(timeline(state, "ada").memberships) == 1


def test_joins_that_cannot_be_the_same_day_are_separate_stints() -> None:
    state = build(
        joined("ada", "a", "2019"),
        left("ada", "a", "2020-06"),
        joined("ada", "a", "2023-02"),
        left("ada", "a", "2024-01-15"),
    )
    spans = [
        (m.start.value, None if m.end is None else m.end.value) for m in timeline(state, "ada").memberships
    ]
    assert spans == [("2019", "2020-06"), ("2023-02", "2024-01-15")]
    assert members(state, "a", "2021-01-01") == []
    assert members(state, "a", "2023-06-01") == ["ada"]
    assert members(state, "a", "2024-01-15") == []


def test_a_dead_claim_no_longer_narrows_the_start() -> None:
    state = build(joined("ada", "a", "2025-07"), joined("ada", "a", "2025-07-20", source=OTHER), denied(2))
    found = entry(state, "a", "2025-08-01", "ada")
    assert (found.start.earliest, found.start.latest) == (d("2025-07-01"), d("2025-07-31"))
    assert [s.status for s in cited(found)] == ["reported", "denied"]


def test_the_role_given_on_joining_is_the_initial_role() -> None:
    state = build(joined("ada", "a", "2025-01-01", role="advisor", title="Chief Scientist"))
    found = entry(state, "a", "2025-02-01", "ada")
    assert (found.role, found.title) == ("advisor", "Chief Scientist")


# ---- rule 2: leaving ---------------------------------------------------------------------


def test_leaving_ends_the_stints_of_sub_orgs_too() -> None:
    state = build(
        org("apple", "company"),
        org("afm", parent_id="apple"),
        org("siri", parent_id="apple"),
        joined("pang", "apple", "2021"),
        joined("pang", "afm", "2022-01-01", role="lead"),
        joined("pang", "siri", "2021-03-01"),
        left("pang", "siri", "2022-03-01"),
        joined("pang", "siri", "2026-01-01"),
        left("pang", "apple", "2025-07-07"),
    )
    assert members(state, "afm", "2025-07-06") == ["pang"]
    assert members(state, "afm", "2025-07-07") == []
    [afm] = [m for m in timeline(state, "pang").memberships if m.org_id == "afm"]
    siri1, siri2 = [m for m in timeline(state, "pang").memberships if m.org_id == "siri"]
    assert afm.end is not None and afm.end.earliest == d("2025-07-07")
    assert [s.type for s in cited(afm)] == ["member.joined", "member.left"]
    # An earlier end is kept, and a stint starting after the left is not touched.
    assert siri1.end is not None and siri1.end.value == "2022-03-01"
    assert siri2.org_id == "siri" and siri2.end is None


def test_leaving_an_org_never_joined_makes_no_membership_but_a_move() -> None:
    state = build(left("ada", "google", "2021", to_org_id="apple"))
    assert state.membership_rows("ada") == []
    [move] = state.move_rows("ada")
    assert (move.from_org_id, move.to_org_id, move.on_value) == ("google", "apple", "2021")


def test_two_reports_of_one_departure_narrow_its_end() -> None:
    state = build(
        joined("ada", "a", "2020"), left("ada", "a", "2025"), left("ada", "a", "2025-03", source=OTHER)
    )
    [stint] = timeline(state, "ada").memberships
    assert stint.end is not None
    assert (stint.end.value, stint.end.earliest, stint.end.latest) == (
        "2025-03",
        d("2025-03-01"),
        d("2025-03-31"),
    )
    assert len(cited(stint)) == 3


def test_an_undated_departure_leaves_the_whole_stint_possible() -> None:
    state = build(joined("ada", "a", "2020-01-01"), left("ada", "a", ev.DateRange(text="a quitté")))
    assert members(state, "a", "2021-01-01") == []
    assert possible(state, "a", "2021-01-01") == ["ada"]
    assert possible(state, "a", "2025-07-08") == []


def test_the_same_joining_reported_with_two_roles_is_two_memberships_that_end_together() -> None:
    state = build(
        joined("ada", "a", "2025-07", role="lead"),
        joined("ada", "a", "2025-07-08", source=OTHER),
        left("ada", "a", "2025-09-01"),
    )
    # Two memberships in her career, one entry in the roster: the lead one.
    assert len(timeline(state, "ada").memberships) == 2
    assert [(e.person_id, e.role) for e in roster(state, "a", "2025-08-01").members] == [("ada", "lead")]
    assert roster(state, "a", "2025-09-01").members == []
    assert [m.end.value if m.end else None for m in timeline(state, "ada").memberships] == ["2025-09-01"] * 2


# ---- rule 3: role changes ------------------------------------------------------------------


def test_a_role_change_starts_a_new_segment_of_the_same_stint() -> None:
    state = build(
        joined("ada", "a", "2020-01-01"),
        role_changed("ada", "a", "lead", "2022-05-01", title="Head of Research"),
    )
    early, late = entry(state, "a", "2022-04-30", "ada"), entry(state, "a", "2022-05-01", "ada")
    assert (early.role, early.title) == ("member", None)
    assert (late.role, late.title) == ("lead", "Head of Research")
    assert early.start == late.start
    [stint] = timeline(state, "ada").memberships
    assert (stint.role, stint.title) == ("lead", "Head of Research")
    assert [(r.role, r.since, r.until) for r in stint.roles] == [
        ("member", None, d("2022-05-01")),
        ("lead", d("2022-05-01"), None),
    ]


def test_a_role_change_without_a_stint_does_nothing() -> None:
    state = build(role_changed("ada", "a", "lead", "2022-05-01"))
    assert state.membership_rows("ada") == []


# ---- rule 4: leads ---------------------------------------------------------------------------


def test_an_appointment_hands_the_lead_over_and_keeps_the_previous_lead_as_member() -> None:
    state = build(
        joined("ada", "a", "2020-01-01", role="lead"),
        joined("bob", "a", "2021-01-01"),
        appointed("bob", "a", "2024-03-01", title="Director"),
    )
    before = {e.person_id: e.role for e in roster(state, "a", "2024-02-29").members}
    after = {e.person_id: (e.role, e.title) for e in roster(state, "a", "2024-03-01").members}
    assert before == {"ada": "lead", "bob": "member"}
    assert after == {"ada": ("member", None), "bob": ("lead", "Director")}
    assert len(timeline(state, "bob").memberships) == 1


def test_an_appointment_on_the_day_the_lead_joined_ends_that_lead() -> None:
    state = build(
        joined("ada", "a", "2024-03-01", role="lead"),
        appointed("bob", "a", "2024-03-01"),
    )
    assert {e.person_id: e.role for e in roster(state, "a", "2024-03-01").members} == {
        "ada": "member",
        "bob": "lead",
    }


def test_an_appointment_without_a_stint_starts_one() -> None:
    state = build(appointed("ada", "a", "2024-03"))
    assert possible(state, "a", "2024-03-15") == ["ada"]
    assert entry(state, "a", "2024-04-01", "ada").role == "lead"
    [stint] = timeline(state, "ada").memberships
    assert stint.start.value == "2024-03"


def test_hand_overs_follow_valid_time_whatever_the_recording_order() -> None:
    appointments = [
        appointed("ada", "a", "2020-01-01"),
        appointed("bob", "a", "2022-01-01"),
        appointed("cy", "a", "2024-01-01"),
    ]

    def leads(state: State, on: str) -> list[str]:
        return [e.person_id for e in roster(state, "a", on).members if e.role == "lead"]

    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        state = build(*(appointments[i] for i in order))
        assert leads(state, "2021-01-01") == ["ada"]
        assert leads(state, "2023-01-01") == ["bob"]
        assert leads(state, "2025-01-01") == ["cy"]
        assert sorted(members(state, "a", "2025-01-01")) == ["ada", "bob", "cy"]


def test_an_appointment_belongs_to_a_stint_whose_undated_start_may_have_come_by_then() -> None:
    # Joined at a date the article does not give (known by its day), appointed lead on a
    # dated day before it: one stint, led from that day, never listed twice.
    state = build(
        joined("ada", "a", ev.DateRange(latest="2025-07-08", text="récemment")),
        appointed("ada", "a", "2025-07-01"),
    )
    [stint] = timeline(state, "ada").memberships
    assert [r.role for r in stint.roles] == ["member", "lead"]
    listed = roster(state, "a", "2025-07-10")
    assert [(e.person_id, e.role) for e in listed.members] == [("ada", "lead")]
    assert listed.possible == []
    assert [(e.person_id, e.role) for e in roster(state, "a", "2025-07-03").possible] == [("ada", "lead")]


def test_a_lead_claim_dated_before_its_stint_starts_yields_to_a_later_claim() -> None:
    state = build(
        role_changed("bob", "a", "lead", ev.DateRange(latest="2020-01-01")),
        joined("bob", "a", "2021-01-01"),
        appointed("cy", "a", ev.DateRange(latest="2020-06-01")),
    )
    assert [(e.person_id, e.role) for e in roster(state, "a", "2021-06-01").members] == [
        ("bob", "member"),
        ("cy", "lead"),
    ]


def test_joining_as_lead_ends_the_lead_of_whoever_held_it() -> None:
    state = build(appointed("ada", "a", "2020-01-01"), joined("bob", "a", "2021-01-01", role="lead"))
    assert [(e.person_id, e.role) for e in roster(state, "a", "2021-06-01").members] == [
        ("ada", "member"),
        ("bob", "lead"),
    ]


def test_a_denied_appointment_does_nothing() -> None:
    state = build(
        joined("ada", "a", "2020-01-01", role="lead"),
        appointed("bob", "a", "2024-03-01"),
        denied(2),
    )
    assert [(e.person_id, e.role) for e in roster(state, "a", "2025-01-01").members] == [("ada", "lead")]
    assert state.membership_rows("bob") == []


# ---- rules 5, 6, 7: reorganisations ------------------------------------------------------


def test_a_merge_carries_the_members_over_with_their_roles() -> None:
    state = build(
        org("x"),
        org("y"),
        org("z", parent_id="x"),
        joined("ada", "x", "2020-01-01"),
        joined("bob", "x", "2021-01-01", role="lead"),
        joined("cy", "y", "2019-01-01"),
        joined("cy", "x", "2019-01-01"),
        merged("x", "y", "2025-03-01"),
    )
    assert sorted(members(state, "x", "2025-02-28")) == ["ada", "bob", "cy"]
    assert members(state, "x", "2025-03-01") == []
    on_merge = {
        e.person_id: (e.role, e.start.value, [s.type for s in cited(e)])
        for e in roster(state, "y", "2025-03-01").members
    }
    # Bob led x; x's lead does not lead y (rule 5).
    assert on_merge == {
        "ada": ("member", "2025-03-01", ["org.merged"]),
        "bob": ("member", "2025-03-01", ["org.merged"]),
        "cy": ("member", "2019-01-01", ["member.joined"]),
    }
    view = reference.answer_org(state, "x", d("2025-03-01"))
    assert view is not None and not view.exists
    assert tree_ids(state, "y", "2025-02-28") == {"y": {}}
    assert tree_ids(state, "y", "2025-03-01") == {"y": {"z": {}}}
    assert tree_ids(state, "x", "2025-02-28") == {"x": {"z": {}}}


def test_merges_chain() -> None:
    state = build(
        joined("ada", "x", "2020-01-01"),
        merged("x", "y", "2024-01-01"),
        merged("y", "w", "2025-01-01"),
    )
    assert members(state, "y", "2024-06-01") == ["ada"]
    assert members(state, "w", "2025-01-01") == ["ada"]
    assert members(state, "y", "2025-01-01") == []
    assert [m.org_id for m in timeline(state, "ada").memberships] == ["x", "y", "w"]


def test_a_dissolution_ends_every_stint_in_it() -> None:
    state = build(
        org("x", on="2019"),
        joined("ada", "x", "2020-01-01"),
        joined("bob", "x", "2024-06"),
        dissolved("x", "2024-06-15"),
    )
    assert sorted(members(state, "x", "2024-06-14")) == ["ada"]
    assert possible(state, "x", "2024-06-14") == ["bob"]
    assert roster(state, "x", "2024-06-15").members == roster(state, "x", "2024-06-15").possible == []
    [stint] = timeline(state, "ada").memberships
    assert stint.end is not None and stint.end.value == "2024-06-15"
    view = reference.answer_org(state, "x", d("2030-01-01"))
    assert view is not None and (view.exists, view.name) == (False, "X")


def test_an_org_before_it_was_founded_has_an_empty_roster() -> None:
    state = build(org("x", on="2025-06-01"), joined("ada", "x", "2025-01-01"))
    assert members(state, "x", "2025-05-31") == []
    assert members(state, "x", "2025-06-01") == ["ada"]


def test_moving_a_team_changes_the_tree_and_the_suborg_rosters() -> None:
    state = build(
        org("a", "company"),
        org("b", "company"),
        org("t", parent_id="a"),
        joined("ada", "t", "2020-01-01"),
        moved("t", "b", "2025-01-01"),
    )
    assert tree_ids(state, "a", "2024-12-31") == {"a": {"t": {}}}
    assert tree_ids(state, "a", "2025-01-01") == {"a": {}}
    assert tree_ids(state, "b", "2025-01-01") == {"b": {"t": {}}}
    assert members(state, "a", "2024-12-31", suborgs=True) == ["ada"]
    assert members(state, "a", "2025-01-01", suborgs=True) == []
    assert members(state, "b", "2025-01-01", suborgs=True) == ["ada"]
    assert members(state, "b", "2025-01-01") == []


def test_renames_and_reasserted_orgs() -> None:
    state = build(
        org("x", "lab", name="FAIR"),
        org("x", "team", name="Other", parent_id="y"),
        renamed("x", "Meta AI Research", "2023-05"),
    )
    before, after = (reference.answer_org(state, "x", d(on)) for on in ("2023-04-30", "2023-05-01"))
    assert before is not None and (before.name, before.kind, before.parent_id) == ("FAIR", "lab", None)
    assert after is not None and (after.name, after.kind) == ("Meta AI Research", "lab")
    assert len(state.org_rows("x")) == 2


def test_a_denied_org_event_is_undone() -> None:
    state = build(
        org("a", "company"),
        org("t", parent_id="a"),
        joined("ada", "t", "2020-01-01"),
        merged("t", "u", "2024-01-01"),
        denied(4),
    )
    assert members(state, "t", "2025-01-01") == ["ada"]
    assert members(state, "u", "2025-01-01") == []


def test_an_org_only_referred_to_exists_for_all_time_without_a_kind() -> None:
    state = build(joined("ada", "meta", "2020", org_name="Meta"))
    view = reference.answer_org(state, "meta", d("1950-01-01"))
    assert view == answers.OrgView(
        org_id="meta", name="Meta", kind=None, parent_id=None, as_of=1, exists=True
    )
    assert reference.answer_org(state, "google", d("1950-01-01")) is None
    assert reference.answer_roster(state, "google", d("1950-01-01")) is None


# ---- rule 8: statuses ----------------------------------------------------------------------


def test_a_denied_join_leaves_the_roster_but_stays_in_the_timeline_flagged() -> None:
    state = build(joined("ada", "a", "2020-01-01"), joined("bob", "a", "2020-01-01"), denied(1), retracted(2))
    assert members(state, "a", "2021-01-01") == []
    assert [m.status for m in timeline(state, "ada").memberships] == ["denied"]
    assert [m.status for m in timeline(state, "bob").memberships] == ["retracted"]


def test_the_dead_status_set_last_is_the_one_shown() -> None:
    state = build(
        joined("ada", "a", "2020-01-01"), joined("ada", "a", "2020", source=OTHER), retracted(2), denied(1)
    )
    assert [m.status for m in timeline(state, "ada").memberships] == ["denied"]


def test_a_denial_counts_from_its_position_on() -> None:
    records = as_recorded([joined("ada", "a", "2020-01-01"), denied(1)])
    state = fold(records[:1])
    assert members(state, "a", "2021-01-01") == ["ada"]
    applied = state.apply(records[1])
    assert applied.claim is not None and applied.claim.position == 1 and not applied.new
    assert members(state, "a", "2021-01-01") == []


def test_a_retracted_left_ends_nothing() -> None:
    state = build(
        joined("ada", "a", "2020-01-01"), left("ada", "a", "2022-01-01", to_org_id="b"), retracted(2)
    )
    assert members(state, "a", "2030-01-01") == ["ada"]
    assert state.move_rows("ada") == []


def test_status_filters_and_confirmation() -> None:
    state = build(
        joined("ada", "a", "2020-01-01", status="rumor"),
        joined("bob", "a", "2020-01-01"),
        joined("bob", "a", "2020", status="rumor", source=OTHER),
    )
    assert members(state, "a", "2021-01-01") == ["bob"]
    assert members(state, "a", "2021-01-01", min_status="rumor") == ["ada", "bob"]
    assert members(state, "a", "2021-01-01", min_status="confirmed") == []
    state.apply(as_recorded([confirmed(1)], first=4)[0])
    assert members(state, "a", "2021-01-01", min_status="confirmed") == ["ada"]
    state.apply(as_recorded([denied(1)], first=5)[0])
    assert members(state, "a", "2021-01-01", min_status="rumor") == ["bob"]
    state.apply(as_recorded([confirmed(1)], first=6)[0])
    assert members(state, "a", "2021-01-01", min_status="confirmed") == ["ada"]


def test_claims_on_unknown_events_are_ignored() -> None:
    state = build(joined("ada", "a", "2020-01-01"))
    applied = state.apply(as_recorded([denied(99)], first=2)[0])
    assert applied.claim is None and (applied.named_people, applied.named_orgs) == (frozenset(), frozenset())
    assert members(state, "a", "2021-01-01") == ["ada"]


# ---- rules 9, 10, 11: pay, moves, names ----------------------------------------------------


def test_pay_claims_register_their_ids_only() -> None:
    pay = ev.CompReported(
        data=ev.CompReportedData(
            person_id="pang",
            person_name="Ruoming Pang",
            org_id="meta",
            org_name="Meta",
            amount=ev.Money(min=200_000_000, max=200_000_000, currency="USD"),
            basis="total",
        ),
        source=SOURCE,
    )
    state = build(pay)
    assert "pang" in state.people and "meta" in state.orgs
    assert state.membership_rows("pang") == []


def test_a_left_and_the_matching_join_are_one_move() -> None:
    state = build(
        org("apple", "company"),
        org("afm", parent_id="apple"),
        org("meta", "company"),
        org("msl", "lab", parent_id="meta"),
        left("pang", "afm", "2025-07", to_org_id="msl"),
        joined(
            "pang", "msl", ev.DateRange(value="2025-07", latest="2025-07-08"), from_org_id="afm", source=OTHER
        ),
        joined("li", "msl", "2025-06", from_org_id="openai"),
        left("bo", "afm", "2023", to_org_id="msl"),
        denied(8),
    )
    [move] = state.move_rows("pang")
    assert (move.on_earliest, move.on_latest) == (d("2025-07-01"), d("2025-07-08"))
    assert [s.type for s in cited(move)] == ["member.left", "member.joined"]
    flows = reference.answer_flows(state, "apple", "meta")
    assert flows is not None and flows.count == 1
    assert [(m.person_id, m.from_org_id, m.to_org_id) for m in flows.moves] == [("pang", "afm", "msl")]
    between = reference.answer_flows(state, "afm", "msl", since=d("2025-07-01"), until=d("2025-07-01"))
    assert between is not None and between.count == 1
    later = reference.answer_flows(state, "afm", "msl", since=d("2025-07-02"))
    assert later is not None and later.count == 0
    anywhere = reference.answer_flows(state, "openai", "meta")
    assert anywhere is not None and [m.person_id for m in anywhere.moves] == ["li"]


def test_a_move_counts_on_any_day_of_its_date_not_only_the_first() -> None:
    # A move dated "June 2025" into a lab founded on 30 June 2025 flows into its parent.
    state = build(
        org("apple", "company"),
        org("afm", parent_id="apple"),
        org("meta", "company"),
        org("msl", "lab", parent_id="meta", on="2025-06-30"),
        joined("pang", "msl", "2025-06", from_org_id="afm"),
    )
    flows = reference.answer_flows(state, "apple", "meta")
    assert flows is not None
    assert [(m.person_id, m.from_org_id, m.to_org_id) for m in flows.moves] == [("pang", "afm", "msl")]
    # A lab founded in July has no day in June: no flow into its parent.
    late = build(
        org("apple", "company"),
        org("afm", parent_id="apple"),
        org("meta", "company"),
        org("msl", "lab", parent_id="meta", on="2025-07-01"),
        joined("pang", "msl", "2025-06", from_org_id="afm"),
    )
    assert reference.answer_flows(late, "apple", "meta").count == 0  # type: ignore[union-attr]


def test_the_first_name_wins_and_aliases_are_kept_in_order() -> None:
    state = build(
        joined("ruoming-pang", "a", "2020"),
        ev.PersonAdded(
            data=ev.PersonAddedData(person_id="ruoming-pang", name="R. Pang", aliases=["庞若鸣", "Pang"])
        ),
        ev.PersonAliasAdded(data=ev.PersonAliasAddedData(person_id="ruoming-pang", alias="Pang")),
        ev.PersonAliasAdded(data=ev.PersonAliasAddedData(person_id="ruoming-pang", alias="Ruoming P.")),
    )
    row = state.person_row("ruoming-pang")
    assert row is not None
    assert (row.name, row.aliases) == ("Ruoming Pang", ("庞若鸣", "Pang", "Ruoming P."))


# ---- rows --------------------------------------------------------------------------------


def test_rows_are_values_told_apart_by_their_key() -> None:
    state = build(joined("ada", "a", "2020"), role_changed("ada", "a", "lead", "2021-01-01"))
    rows = state.membership_rows("ada")
    assert len({row_key(r) for r in rows}) == 2
    assert rows == build(
        joined("ada", "a", "2020"), role_changed("ada", "a", "lead", "2021-01-01")
    ).membership_rows("ada")
    assert all(isinstance(r, MembershipRow) and all(isinstance(s, SourceRef) for s in cited(r)) for r in rows)
    segments = sorted((r.seg_from or date.min, r.seg_until) for r in rows)
    assert segments == [(date.min, d("2021-01-01")), (d("2021-01-01"), None)]


# ---- the founding article ------------------------------------------------------------------

ARTICLE = ev.Source(
    url="https://www.lemondeinformatique.fr/actualites/lire-meta-recrute-ruoming-pang.html",
    outlet="Le Monde Informatique",
    published_at="2025-07-08",
    lang="fr",
)
THIS_WEEK = ev.DateRange(value="2025-07", earliest="2025-07-07", latest="2025-07-08", text="cette semaine")
UNDATED = ev.DateRange(text="pour constituer ce nouveau laboratoire")


def article() -> list[ev.Event]:
    s = {"source": ARTICLE}
    return [
        org("meta", "company", name="Meta", **s),
        org("meta-superintelligence-labs", "lab", name="Meta Superintelligence Labs", parent_id="meta", **s),
        org("apple", "company", name="Apple", **s),
        org("apple-foundation-models", "team", name="Apple Foundation Models", parent_id="apple", **s),
        appointed("alexandr-wang", "meta-superintelligence-labs", "2025-06-12", **s),
        joined("daniel-gross", "meta-superintelligence-labs", UNDATED, from_org_id="ssi", **s),
        joined("nat-friedman", "meta-superintelligence-labs", UNDATED, **s),
        joined("yuanzhi-li", "meta-superintelligence-labs", UNDATED, from_org_id="openai", **s),
        joined("anton-bakhtin", "meta-superintelligence-labs", UNDATED, from_org_id="anthropic", **s),
        joined("ruoming-pang", "google", ev.DateRange(latest="2011-07-08", text="plus de 10 ans"), **s),
        left("ruoming-pang", "google", "2021", to_org_id="apple", **s),
        joined("ruoming-pang", "apple", "2021", from_org_id="google", **s),
        joined("ruoming-pang", "apple-foundation-models", "2021", role="lead", **s),
        left("ruoming-pang", "apple", THIS_WEEK, to_org_id="meta-superintelligence-labs", **s),
        joined("ruoming-pang", "meta-superintelligence-labs", THIS_WEEK, from_org_id="apple", **s),
        appointed("zhifeng-chen", "apple-foundation-models", ev.DateRange(text="qui sera dirigée par"), **s),
    ]


def test_the_founding_article() -> None:
    state = build(*article())
    msl = "meta-superintelligence-labs"
    june = roster(state, msl, "2025-06-01")
    assert june.members == []
    assert [e.person_id for e in june.possible] == [
        "anton-bakhtin",
        "daniel-gross",
        "nat-friedman",
        "yuanzhi-li",
    ]
    july = roster(state, msl, "2025-07-10")
    assert [(e.person_id, e.role) for e in july.members] == [
        ("alexandr-wang", "lead"),
        ("anton-bakhtin", "member"),
        ("daniel-gross", "member"),
        ("nat-friedman", "member"),
        ("ruoming-pang", "member"),
        ("yuanzhi-li", "member"),
    ]
    assert july.possible == []
    pang = entry(state, msl, "2025-07-10", "ruoming-pang")
    assert (pang.start.value, pang.start.earliest, pang.start.latest) == (
        "2025-07",
        d("2025-07-07"),
        d("2025-07-08"),
    )

    assert [
        (e.person_id, e.org_id, e.role) for e in roster(state, "apple", "2025-06-01", suborgs=True).members
    ] == [
        ("ruoming-pang", "apple", "member"),
        ("ruoming-pang", "apple-foundation-models", "lead"),
    ]
    assert possible(state, "apple-foundation-models", "2025-06-01") == ["zhifeng-chen"]
    after = roster(state, "apple", "2025-07-10", suborgs=True)
    assert [(e.person_id, e.role) for e in after.members] == [("zhifeng-chen", "lead")]
    assert after.possible == []
    assert members(state, "meta", "2025-07-10", suborgs=True) == members(state, msl, "2025-07-10")

    career = timeline(state, "ruoming-pang")
    assert [(m.org_id, m.start.value) for m in career.memberships] == [
        ("google", None),
        ("apple", "2021"),
        ("apple-foundation-models", "2021"),
        ("meta-superintelligence-labs", "2025-07"),
    ]
    assert [m.end.value if m.end else None for m in career.memberships] == [
        "2021",
        "2025-07",
        "2025-07",
        None,
    ]

    flows = reference.answer_flows(state, "apple", "meta")
    assert flows is not None and [(m.person_id, m.from_org_id, m.to_org_id) for m in flows.moves] == [
        ("ruoming-pang", "apple", msl)
    ]
    google = reference.answer_flows(state, "google", "apple")
    assert google is not None and google.count == 1
    assert tree_ids(state, "meta", "2025-07-10") == {"meta": {msl: {}}}


def test_answers_encode_to_the_shapes_of_the_design() -> None:
    state = build(*article())
    msl = "meta-superintelligence-labs"

    def encoded(answer: object) -> Any:
        return msgspec.json.decode(msgspec.json.encode(answer))

    listed = encoded(reference.answer_roster(state, msl, d("2025-07-10")))
    assert set(listed) == {"org_id", "on", "as_of", "members", "possible"}
    assert listed["on"] == "2025-07-10" and listed["as_of"] == len(article())
    entry = listed["members"][0]
    assert {"person_id", "name", "org_id", "role", "title", "start", "sources"} <= set(entry)
    assert entry["start"] == {"value": "2025-06-12", "earliest": "2025-06-12", "latest": "2025-06-12"}
    assert {"event_id", "position", "url", "outlet", "published_at", "status"} <= set(entry["sources"][0])

    career = encoded(reference.answer_timeline(state, "ruoming-pang"))
    assert set(career) == {"person_id", "name", "as_of", "memberships"}
    assert {"org_id", "role", "title", "start", "end", "status", "sources"} <= set(career["memberships"][0])
    assert career["memberships"][0]["start"] == {"value": None, "earliest": None, "latest": "2011-07-08"}

    view = encoded(reference.answer_org(state, msl, d("2025-07-10")))
    assert {"org_id", "name", "kind", "parent_id", "as_of"} <= set(view)
    top = encoded(reference.answer_tree(state, "meta", d("2025-07-10")))
    assert set(top) == {"org_id", "name", "as_of", "children"}
    assert set(top["children"][0]) == {"org_id", "name", "children"}
    moves = encoded(reference.answer_flows(state, "apple", "meta"))
    assert set(moves) == {"from", "to", "as_of", "count", "moves"}
    assert set(moves["moves"][0]) == {"person_id", "from_org_id", "to_org_id", "on"}
    replay = encoded(reference.answer_state(state, d("2025-07-10")))
    assert [o["org_id"] for o in replay["orgs"]] == sorted(state.orgs)
