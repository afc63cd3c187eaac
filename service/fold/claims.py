"""Claims: stored events as the fold holds them, with their status and their valid time."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal, TypeAlias

import msgspec

from service import dates
from service import events as ev
from service.dates import DayRange
from service.fold.rows import SourceRef, sources_json

ClaimStatus: TypeAlias = Literal["rumor", "reported", "confirmed", "denied", "retracted"]
DEAD: Final = frozenset({"denied", "retracted"})

# -inf and +inf as days, so that points order and compare without None checks.
NEVER: Final = date.min
FOREVER: Final = date.max


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as stored in the log, with what the server assigned to it."""

    position: int
    event_id: uuid.UUID
    fact_key: str
    event: ev.Event


class Kept(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What the projector stores of a claim, once: what it said. Its position is stored
    beside it; its status, where it changed later (rule 8), apart."""

    event_id: uuid.UUID
    fact_key: str
    event: ev.Event


class StoredClaim(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A claim as the projector loads it: what it said, and its status now."""

    position: int
    event_id: uuid.UUID
    fact_key: str
    status: str
    status_position: int
    event: ev.Event


@dataclass(slots=True, eq=False)
class Claim:
    """A stored event with its current status and its resolved valid time."""

    position: int
    event_id: uuid.UUID
    fact_key: str
    event: ev.Event
    status: ClaimStatus
    status_position: int
    on: DayRange = field(init=False)
    value: str | None = field(init=False)
    # Careers are re-derived often; what a claim contributes to them is computed once
    # (its point date) or once per status (its source), not on every derivation.
    at: date = field(init=False)
    _source: SourceRef | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.on, self.value = valid_time(self.event)
        self.at = at(self.on)

    @classmethod
    def recorded(cls, rec: Recorded) -> Claim:
        return cls(rec.position, rec.event_id, rec.fact_key, rec.event, rec.event.status, rec.position)

    @classmethod
    def stored(cls, kept: StoredClaim) -> Claim:
        status: ClaimStatus = kept.status  # type: ignore[assignment]
        return cls(kept.position, kept.event_id, kept.fact_key, kept.event, status, kept.status_position)

    def kept(self) -> Kept:
        return Kept(self.event_id, self.fact_key, self.event)

    @property
    def live(self) -> bool:
        return self.status not in DEAD

    def source(self) -> SourceRef:
        cached = self._source
        if cached is not None and cached.status == self.status:
            return cached
        src = self.event.source
        cached = self._source = SourceRef(
            event_id=str(self.event_id),
            position=self.position,
            type=ev.type_name(self.event),
            status=self.status,
            url=None if src is None else src.url,
            outlet=None if src is None else src.outlet,
            published_at=None if src is None else src.published_at,
            lang=None if src is None else src.lang,
            quote=None if src is None else src.quote,
        )
        return cached


def at(r: DayRange) -> date:
    """The one day that stands for a range where one is needed (dates.point), -inf as NEVER."""
    return dates.point(r) or NEVER


def valid_time(event: ev.Event) -> tuple[DayRange, str | None]:
    """A claim's `on` as a range of days, with the words of its value."""
    on = getattr(event.data, "on", None)
    if on is None and isinstance(event, MEMBER_CLAIMS):
        # A member claim without a date is undated: DESIGN 1, as a date with no value.
        on = ev.DateRange()
    if on is None:
        return DayRange(None, None), None
    if isinstance(on, str):
        low, high = dates.value_range(on)
        return DayRange(low, high), on
    published = None if event.source is None else event.source.published_day
    return dates.resolve_reported(on.value, on.earliest, on.latest, published), on.value


def combined(claims: list[Claim]) -> tuple[DayRange, str | None]:
    """The range several claims about one date allow, with the most precise one's words."""
    sharpest = min(claims, key=lambda c: (dates.width(c.on) or 10**9, c.position))
    return dates.combine(c.on for c in claims), sharpest.value


def sources(claims: Iterable[Claim], cache: dict[tuple[tuple[int, str], ...], msgspec.Raw]) -> msgspec.Raw:
    """The sources of a row: each claim once, in position order, as JSON.

    A career is derived again at every event of its person, and most of its stints cite
    the same claims, with the same statuses, as the last time: `cache` keeps their JSON.
    """
    unique = {c.position: c for c in claims}
    key = tuple((p, unique[p].status) for p in sorted(unique))
    cited = cache.get(key)
    if cited is None:
        cited = cache[key] = sources_json(unique[p].source() for p, _ in key)
    return cited


def lead_making(event: ev.Event) -> bool:
    """Rule 4: whether a claim makes its person the lead of its org from its day."""
    match event:
        case ev.LeadAppointed():
            return True
        case ev.MemberJoined(data=d) | ev.MemberRoleChanged(data=d):
            return d.role == "lead"
    return False


def org_of(event: ev.Event) -> str:
    """The org a member claim is about."""
    match event:
        case ev.MemberJoined(data=d) | ev.MemberLeft(data=d) | ev.MemberRoleChanged(data=d):
            return d.org_id
        case ev.LeadAppointed(data=d):
            return d.org_id
    raise TypeError(f"{ev.type_name(event)} is not a member claim")


MEMBER_CLAIMS: Final = (ev.MemberJoined, ev.MemberLeft, ev.MemberRoleChanged, ev.LeadAppointed)
ORG_CLAIMS: Final = (ev.OrgAdded, ev.OrgRenamed, ev.OrgMoved, ev.OrgMerged, ev.OrgDissolved)
STATUS_EVENTS: Final = (ev.ClaimConfirmed, ev.ClaimDenied, ev.ClaimRetracted)
