"""The reference the SQL side is compared with: the questions of `service.answers` asked of
a whole State folded in memory, and logs numbered as the store would number them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from service import events as ev
from service.answers import (
    Flows,
    MinStatus,
    OrgView,
    Roster,
    RosterEntry,
    StateView,
    Timeline,
    TimelineEntry,
    Tree,
    flows,
    org_view,
    roster,
    roster_orgs,
    state_view,
    timeline,
    tree,
)
from service.fold import SOURCES, MembershipRow, MoveRow, PersonRow, Recorded, SourceRef, State


def event_id_at(position: int) -> uuid.UUID:
    """The event id `as_recorded` gives the event at a position: tests can refer to it."""
    return uuid.UUID(int=position)


def as_recorded(events: Iterable[ev.Event], first: int = 1) -> list[Recorded]:
    """Number events as the log would, with ids derived from their positions."""
    return [
        Recorded(position, event_id_at(position), ev.fact_key(e), e)
        for position, e in enumerate(events, start=first)
    ]


def cited(row: MembershipRow | MoveRow | RosterEntry | TimelineEntry) -> tuple[SourceRef, ...]:
    """The sources a row or an entry cites, decoded from the JSON it carries them as."""
    return SOURCES.decode(row.sources)  # type: ignore[arg-type]


def _names(people: dict[str, PersonRow]) -> dict[str, str | None]:
    return {person_id: row.name for person_id, row in people.items()}


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
