"""Properties of the fold over generated histories.

(a) a partial State that loads what it lacks, batch after batch, from what the projector
saves, derives exactly what the whole fold derives; (b) a state built one event at a
time, queried along the way, answers like a state folded from scratch; (c) where
recording order must not matter, it does not; (d) the invariants every answer keeps: a
person at most once in a roster, at most one sure lead, a move counted on any day its
date allows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import answers
from service import events as ev
from service.fold import NotLoaded, OrgFile, PersonFile, Row, State, StoredClaim, fold, row_key
from service.fold.claims import Kept
from tests import reference
from tests.histories import DAYS, ORGS, PEOPLE, commuting_histories, histories, lead_histories
from tests.reference import as_recorded, cited, event_id_at

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Snapshot:
    people: dict[str, tuple[frozenset[bytes], frozenset[bytes], bytes | None]]
    orgs: dict[str, frozenset[bytes]]


def keys(rows: list[Any]) -> frozenset[bytes]:
    return frozenset(row_key(r) for r in rows)


def snapshot(state: State, people: list[str] | None = None, orgs: list[str] | None = None) -> Snapshot:
    def person(p: str) -> tuple[frozenset[bytes], frozenset[bytes], bytes | None]:
        row = state.person_row(p)
        return keys(state.membership_rows(p)), keys(state.move_rows(p)), None if row is None else row_key(row)

    return Snapshot(
        people={p: person(p) for p in (state.people if people is None else people)},
        orgs={o: keys(state.org_rows(o)) for o in (state.orgs if orgs is None else orgs)},
    )


# ---- (a) the projector's partial State ------------------------------------------------------


class Files:
    """What the projector keeps in PostgreSQL between batches, kept in dicts: each claim
    once under each holder, the statuses changed later, and the names."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        self.statuses: dict[int, tuple[str, int]] = {}
        self.people: dict[str, tuple[str | None, list[str]]] = {}
        self.orgs: dict[str, tuple[str | None, list[str]]] = {}
        self.owners: dict[Any, tuple[str, str | None, str | None]] = {}  # event id -> (kind, person, org)

    def held(self, holder: str, ident: str) -> list[StoredClaim]:
        out = []
        for position, packed in self.claims.get((holder, ident), []):
            kept = msgspec.msgpack.decode(packed, type=Kept)
            status, since = self.statuses.get(position, (kept.event.status, position))
            out.append(StoredClaim(position, kept.event_id, kept.fact_key, status, since, kept.event))
        return out

    def load(self, state: State, missing: NotLoaded) -> None:
        people, orgs = set(missing.people), set(missing.orgs)
        for event_id in missing.events:
            found = self.owners.get(event_id)
            if found is None or found[0] not in {"person", "org"}:
                state.mark_inert([event_id])
            elif found[0] == "person":
                people.add(str(found[1]))
                if found[2] is not None:
                    orgs.add(found[2])
            else:
                orgs.add(str(found[2]))
        for p in people:
            header = self.people.get(p)
            file = None if header is None else PersonFile(header[0], header[1], self.held("person", p))
            state.load_person(p, file)
        for o in orgs:
            org = self.orgs.get(o)
            org_file = (
                None if org is None else OrgFile(org[0], self.held("org", o), self.held("lead", o), org[1])
            )
            state.load_org(o, org_file)

    def save(self, state: State) -> None:
        changes = state.take_changes()
        for holder, ident, claim in changes.claims:
            self.claims.setdefault((holder, ident), []).append(
                (claim.position, msgspec.msgpack.encode(claim.kept()))
            )
        self.statuses.update(changes.statuses)
        for p in changes.people:
            self.people[p] = state.person_header(p)
        for o in changes.orgs:
            self.orgs[o] = state.org_header(o)


def patiently(files: Files, state: State, work: Any) -> Any:
    """Run work on a partial State, loading what it finds missing, as the projector does."""
    for _ in range(50):
        try:
            return work()
        except NotLoaded as missing:
            files.load(state, missing)
    raise AssertionError("loading never gave the fold what it asked for")


def claim_index(event: ev.Event) -> tuple[str, str | None, str | None] | None:
    match event:
        case ev.MemberLeft(data=d):
            return "person", d.person_id, None
        case ev.MemberJoined(data=d) | ev.MemberRoleChanged(data=d):
            return "person", d.person_id, d.org_id
        case ev.LeadAppointed(data=d):
            return "person", d.person_id, d.org_id
        case ev.OrgAdded(data=d) | ev.OrgRenamed(data=d) | ev.OrgMoved(data=d):
            return "org", None, d.org_id
        case ev.OrgMerged(data=d) | ev.OrgDissolved(data=d):
            return "org", None, d.org_id
    return None


@EXAMPLES
@given(histories(), st.lists(st.integers(1, 6), min_size=30, max_size=30))
def test_a_partial_state_derives_what_the_whole_fold_does(events: list[ev.Event], cuts: list[int]) -> None:
    records = as_recorded(events)
    files = Files()
    position = 0
    for size in cuts:
        if position >= len(records):
            break
        # Every batch starts from nothing held, as after the projector drops its memory.
        state = State(complete=False, position=position)
        for rec in records[position : position + size]:
            patiently(files, state, functools.partial(state.apply, rec))
            index = claim_index(rec.event)
            if index is not None:
                files.owners[rec.event_id] = index
            whole = fold(records[: rec.position])
            expected = snapshot(whole)
            got = patiently(files, state, functools.partial(snapshot, state, whole.people, whole.orgs))
            assert got == expected, rec.position
        files.save(state)
        position = state.position


# ---- (b) one event at a time ----------------------------------------------------------------


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


# ---- (c) recording order --------------------------------------------------------------------


def normal(state: State) -> tuple[frozenset[Any], ...]:
    """The rows without what recording order alone decides: positions (of sources, and of
    the claim that started a stint) and the choice between equally precise date words."""

    def ids(row: Any) -> frozenset[str]:
        return frozenset(f"{s.event_id}:{s.status}" for s in cited(row))

    def bare(row: Row) -> bytes:
        return msgspec.json.encode(row)

    return (
        frozenset(
            (
                bare(
                    msgspec.structs.replace(
                        r, start_value=None, end_value=None, stint=0, sources=msgspec.Raw(b"[]")
                    )
                ),
                ids(r),
            )
            for r in state.all_membership_rows()
        ),
        frozenset(
            (bare(msgspec.structs.replace(r, on_value=None, sources=msgspec.Raw(b"[]"))), ids(r))
            for r in state.all_move_rows()
        ),
        frozenset(bare(r) for r in state.all_org_rows()),
        frozenset((r.person_id, r.name, frozenset(r.aliases)) for r in state.person_rows().values()),
    )


@EXAMPLES
@given(st.data(), commuting_histories())
def test_recording_order_does_not_change_the_answer(data: st.DataObject, events: list[ev.Event]) -> None:
    ids = [event_id_at(i) for i in range(1, len(events) + 1)]
    shuffled = data.draw(st.permutations(list(zip(ids, events, strict=True))))
    records = as_recorded(events)
    again = [
        type(rec)(position, event_id, ev.fact_key(event), event)
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


# ---- (d) invariants of the answers ----------------------------------------------------------


def days_of(events: list[ev.Event]) -> list[date]:
    """Days around every boundary the generated histories can have."""
    found = {date(2019, 6, 1), date(2031, 1, 1)}
    for day in DAYS:
        found |= {day - timedelta(days=1), day, day + timedelta(days=1)}
        found |= {day.replace(day=1), (day.replace(day=1) + timedelta(days=32)).replace(day=1)}
        found |= {date(day.year, 1, 1), date(day.year, 12, 31), date(day.year + 1, 1, 1)}
    return sorted(found)


@EXAMPLES
@given(histories() | lead_histories(), st.sampled_from(["rumor", "reported", "confirmed"]))
def test_a_person_appears_at_most_once_in_a_roster_and_one_surely_leads(
    events: list[ev.Event], min_status: answers.MinStatus
) -> None:
    state = fold(as_recorded(events))
    for day in days_of(events):
        for org_id in ORGS:
            found = reference.answer_roster(state, org_id, day, min_status=min_status)
            if found is None:
                continue
            listed = [e.person_id for e in found.members + found.possible]
            assert len(listed) == len(set(listed)), (org_id, day, listed)
            leads = [e.person_id for e in found.members if e.role == "lead"]
            assert len(leads) <= 1, (org_id, day, leads)
            below = reference.answer_roster(state, org_id, day, include_suborgs=True, min_status=min_status)
            assert below is not None
            entries = [(e.person_id, e.org_id) for e in below.members + below.possible]
            assert len(entries) == len(set(entries)), (org_id, day, entries)


@EXAMPLES
@given(histories())
def test_a_move_counts_when_its_orgs_sit_in_the_two_subtrees_on_some_day_of_its_date(
    events: list[ev.Event],
) -> None:
    state = fold(as_recorded(events))
    orgs = state.all_org_rows()
    window = (date(2019, 1, 1), date(2032, 1, 1))
    for source in ORGS:
        for target in ORGS:
            flows = reference.answer_flows(state, source, target)
            if flows is None:
                continue
            counted = {(m.person_id, m.from_org_id, m.to_org_id) for m in flows.moves}
            for row in state.all_move_rows():
                first = max(row.on_earliest or window[0], window[0])
                last = min(row.on_latest or window[1], window[1])
                days = [first + timedelta(days=k) for k in range((last - first).days + 1)] or [first]
                somewhere = any(
                    row.from_org_id in {source, *answers.subtree(source, day, orgs)}
                    and row.to_org_id in {target, *answers.subtree(target, day, orgs)}
                    for day in days
                )
                assert ((row.person_id, row.from_org_id, row.to_org_id) in counted) == somewhere, row
