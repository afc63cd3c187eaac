"""An org's versions over valid time: its name, kind and parent on each day (rule 7).

An org exists from its first live org.added's `on` (for all time when it has none, or
when it was only ever referred to) to its earliest live merge or dissolution. Its name
and parent change at each live rename and move, a later one on the same day winning;
its parent is read through merges (a sub-org of an org merged into another sits under
the other from the merge's day).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import msgspec

from service import events as ev
from service.fold.claims import FOREVER, NEVER, Claim, at
from service.fold.rows import OrgRow

if TYPE_CHECKING:
    from service.fold.state import State


def end_of(state: State, org_id: str) -> Claim | None:
    """The merge or dissolution that ends an org: the earliest live one."""
    org = state.org(org_id)
    ends = [
        c
        for c in (org.claims if org else ())
        if c.live and isinstance(c.event, ev.OrgMerged | ev.OrgDissolved)
    ]
    return min(ends, key=lambda c: (c.at, c.position), default=None)


def heir(state: State, org_id: str, day: date) -> str:
    """Where an org's sub-orgs sit on a day: the org, or what it was merged into by then."""
    seen = {org_id}
    while (end := end_of(state, org_id)) is not None and end.at <= day:
        if not isinstance(end.event, ev.OrgMerged) or end.event.data.into_id in seen:
            break
        org_id = end.event.data.into_id
        seen.add(org_id)
    return org_id


def merge_days(state: State, org_id: str) -> set[date]:
    """The days an org's sub-orgs change parent through merges of the org and its heirs."""
    days: set[date] = set()
    seen = {org_id}
    while (end := end_of(state, org_id)) is not None and isinstance(end.event, ev.OrgMerged):
        days.add(end.at)
        org_id = end.event.data.into_id
        if org_id in seen:
            break
        seen.add(org_id)
    return days


def versions(state: State, org_id: str) -> list[OrgRow]:
    org = state.org(org_id)
    assert org is not None
    claims = [c for c in org.claims if c.live]
    adding = next((c for c in claims if isinstance(c.event, ev.OrgAdded)), None)
    added = None if adding is None else adding.event.data
    assert added is None or isinstance(added, ev.OrgAddedData)
    begins = NEVER if adding is None else at(adding.on)
    # Renames and moves in valid-time order; a later one on the same day wins.
    changes = sorted(
        (c for c in claims if isinstance(c.event, ev.OrgRenamed | ev.OrgMoved)),
        key=lambda c: (c.at, c.position),
    )

    def version(day: date) -> tuple[str | None, str | None]:
        name, parent = org.name, None if added is None else added.parent_id
        for change in changes:
            if change.at > day:
                break
            match change.event:
                case ev.OrgRenamed(data=d):
                    name = d.name
                case ev.OrgMoved(data=d):
                    parent = d.parent_id
        return name, None if parent is None else heir(state, parent, day)

    end = end_of(state, org_id)
    ends = FOREVER if end is None else max(end.at, begins)
    parents = {None if added is None else added.parent_id} | {
        c.event.data.parent_id for c in changes if isinstance(c.event, ev.OrgMoved)
    }
    days = {begins} | {c.at for c in changes}
    days |= {d for p in parents if p is not None for d in merge_days(state, p)}
    rows: list[OrgRow] = []
    kind = None if added is None else added.kind
    for day in sorted(d for d in days if d == begins or begins < d < ends):
        name, parent = version(day)
        if rows and (rows[-1].name, rows[-1].parent_id) == (name, parent):
            continue
        if rows:
            rows[-1] = msgspec.structs.replace(rows[-1], valid_until=day)
        rows.append(OrgRow(org_id, name, kind, parent, None if day == NEVER else day, None, False))
    if end is not None:
        rows[-1] = msgspec.structs.replace(rows[-1], valid_until=ends, ended=True)
    return rows
