"""The SQL cache answers exactly like the pure fold, for every date D and position P.

Hypothesis generates histories (joins, leaves, role changes, lead appointments, every
reorg, partial dates of every precision, several outlets for one fact, denials,
retractions, confirmations), appends them through the real store in random batches, and
lets the real projector fold them, in batches of random sizes, holding almost nothing in
memory between batches (so every batch loads what it needs from PostgreSQL). Then, for
positions and dates drawn around every boundary the history has, it compares each
SQL-backed answer with `fold(events[:P])` answered at D: rosters (with and without
sub-orgs, at every min_status), org views, trees, timelines and flows, 404s included.
It compares again after a projector interrupted in the middle of a batch (its
transaction rolled back, its memory lost) has been replaced by a new one that resumed
from the checkpoint.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date, timedelta
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import answers, database, dates, reach, reads, store
from service import events as ev
from service.fold import Recorded, fold
from service.projection import Projection
from tests import reference
from tests.histories import (
    MEMBER_KINDS,
    ORG_KINDS,
    ORG_NAMES,
    ORGS,
    OTHER_KINDS,
    PEOPLE,
    PERSON_NAMES,
    Draws,
    draw_event,
)
from tests.projecting import project

EXAMPLES = int(os.environ.get("EQUIVALENCE_EXAMPLES", "60"))
STATUSES: list[answers.MinStatus] = ["rumor", "reported", "confirmed"]


class FewIds(Draws):
    """Draws from fewer people and orgs than the fold's own tests, so that leaves, role
    changes and reorgs mostly hit memberships that exist: the rows worth comparing."""

    def person(self) -> str:
        return self.draw(st.sampled_from(PEOPLE[:2]))

    def org(self) -> str:
        return self.draw(st.sampled_from(ORGS[:3]))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[ev.Event], list[int]]:
    """A valid history (every id introduced first) and how to cut it into batches."""
    d = FewIds(draw)
    intro: list[ev.Event] = [
        ev.PersonAdded(data=ev.PersonAddedData(person_id=p, name=PERSON_NAMES[p])) for p in PEOPLE
    ]
    intro += [ev.OrgAdded(data=ev.OrgAddedData(org_id=o, name=ORG_NAMES[o], kind="team")) for o in ORGS]
    kinds = draw(st.lists(st.sampled_from(MEMBER_KINDS + ORG_KINDS + OTHER_KINDS), min_size=1, max_size=22))
    body = [draw_event(d, kind, len(intro) + i) for i, kind in enumerate(kinds, start=1)]
    events = intro + body
    sizes = draw(st.lists(st.integers(1, 5), min_size=len(events), max_size=len(events)))
    return events, sizes


def boundary_days(events: list[ev.Event]) -> list[date]:
    """Every day a partial date of the history starts or ends on, and its neighbours."""
    days: set[date] = {date(2019, 6, 1), date(2031, 1, 1)}
    for event in events:
        data: Any = getattr(event, "data", None)
        on = getattr(data, "on", None)
        if on is None:
            continue
        value = on if isinstance(on, str) else on.value
        bounds: list[date] = []
        if value is not None:
            bounds += list(dates.value_range(value))
        if isinstance(on, ev.DateRange):
            bounds += [date.fromisoformat(b) for b in (on.earliest, on.latest) if b]
        for day in bounds:
            days.update({day - timedelta(days=1), day, day + timedelta(days=1)})
    return sorted(days)


async def append_in_batches(conn: Any, events: list[ev.Event], sizes: list[int]) -> None:
    """Append through the real store, claims pointing at real stored events."""
    stored: list[uuid.UUID] = []
    i = 0
    for size in sizes:
        if i >= len(events):
            break
        batch = []
        for event in events[i : i + size]:
            if isinstance(event, ev.ClaimConfirmed | ev.ClaimDenied | ev.ClaimRetracted):
                if not stored:
                    continue
                # The generator aims claims at positions; the server assigns ids.
                target = stored[(event.data.event_id.int - 1) % len(stored)]
                event = msgspec.structs.replace(event, data=ev.ClaimData(event_id=target))
            batch.append(event)
        i += size
        if batch:
            appended = await store.append(conn, batch)
            stored += [a.event_id for a in appended]


def as_json(answer: Any) -> Any:
    """An answer as the JSON value it encodes to. Rosters pass their sources through as
    the cache stores them, so the two sides agree as JSON, not byte for byte (the order
    of keys and the spacing inside `sources` differ)."""
    return msgspec.json.decode(msgspec.json.encode(answer))


async def sql_answer(conn: Any, call: Any) -> Any:
    try:
        found = await call
    except reads.UnknownId:
        return None
    if isinstance(found, tuple):  # roster and timeline say where they stand
        found, stand = found
        assert not stand.behind
    return as_json(found)


def fold_answer(found: Any) -> Any:
    return None if found is None else as_json(found)


async def compare(conn: Any, records: list[Recorded], data: st.DataObject, days: list[date]) -> None:
    head = len(records)
    checks = 0
    for _ in range(6):
        p = data.draw(st.integers(0, head) | st.sampled_from([0, head, max(head - 1, 0)]), label="P")
        d = data.draw(st.sampled_from(days), label="D")
        state = fold(records[:p])
        for org_id in ORGS:
            for include in (False, True):
                status = data.draw(st.sampled_from(STATUSES), label="min_status")
                got = await sql_answer(
                    conn, reads.roster(conn, org_id, d, p, include_suborgs=include, min_status=status)
                )
                want = fold_answer(reference.answer_roster(state, org_id, d, include, status, as_of=p))
                assert got == want, ("roster", org_id, d, p, include, status)
            got = await sql_answer(conn, reads.tree(conn, org_id, d, p))
            assert got == fold_answer(
                reference.answer_tree(state, org_id, d, as_of=p) if org_id in state.orgs else None
            ), (
                "tree",
                org_id,
                d,
                p,
            )
            got = await sql_answer(conn, reads.org(conn, org_id, d, p))
            assert got == fold_answer(
                reference.answer_org(state, org_id, d, as_of=p) if org_id in state.orgs else None
            ), (
                "org",
                org_id,
                d,
                p,
            )
        for person_id in PEOPLE:
            got = await sql_answer(conn, reads.timeline(conn, person_id, p))
            assert got == fold_answer(reference.answer_timeline(state, person_id, as_of=p)), (
                "timeline",
                person_id,
                p,
            )
        source, target = (
            data.draw(st.sampled_from(ORGS), label="from"),
            data.draw(st.sampled_from(ORGS), label="to"),
        )
        since = data.draw(st.none() | st.sampled_from(days), label="since")
        got = await sql_answer(conn, reads.flows(conn, source, target, since, None, p))
        assert got == fold_answer(reference.answer_flows(state, source, target, since, None, as_of=p)), (
            "flows",
            source,
            target,
            since,
            p,
        )
        got = as_json(await reads.state(conn, d, p, "reported"))
        assert got == as_json(reference.answer_state(state, d, "reported", as_of=p)), (
            "state",
            d,
            p,
        )
        checks += 1
    assert checks


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(), data=st.data())
def test_sql_answers_equal_the_fold(
    pg_dsn: str, scenario: tuple[list[ev.Event], list[int]], data: st.DataObject
) -> None:
    events, sizes = scenario
    batch = data.draw(st.integers(1, 8), label="projector batch")
    interrupted_at = data.draw(st.integers(1, 40), label="events before the interruption")

    async def run() -> None:
        schema = f"eq_{uuid.uuid4().hex[:12]}"
        admin = await database.connect(pg_dsn)
        await admin.execute(f"CREATE SCHEMA {schema}")
        conn = await database.connect(pg_dsn, schema=schema)
        try:
            await database.migrate(conn)
            await append_in_batches(conn, events, sizes)
            records = [reference_record(r) for r in await store.page(conn, 0, 10_000, None)]
            # A projector interrupted in the middle of a batch: its transaction rolls back.
            first = Projection(batch=batch, memory_claims=1)
            await interrupt(conn, first, after=interrupted_at)
            checkpoint = await conn.fetchval("SELECT position FROM projection_checkpoint")
            # A new projector resumes from the checkpoint, holding (almost) nothing
            # between batches: every batch loads what it needs.
            await project(conn, batch=batch, memory_claims=1)
            assert (
                await conn.fetchval("SELECT position FROM projection_checkpoint")
                == len(records)
                >= checkpoint
            )
            await compare(conn, records, data, boundary_days(events))
            # The same projector object also goes on correctly after its own failure.
            await append_in_batches(
                conn, [ev.PersonAliasAdded(data=ev.PersonAliasAddedData(person_id="ada", alias="A."))], [1]
            )
            await project(conn, projection=first)
            records = [reference_record(r) for r in await store.page(conn, 0, 10_000, None)]
            await compare(conn, records, data, boundary_days(events))
        finally:
            await conn.close()
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()

    asyncio.run(run())


def reference_record(row: Any) -> Recorded:
    new = store.recorded_from_row(row)
    return Recorded(new.position, new.event_id, new.fact_key, new.event)


async def interrupt(conn: Any, projection: Projection, *, after: int) -> None:
    """Run batches, failing the one that holds the `after`-th event at that event: the
    failure rolls its transaction back, and the projector forgets what it held."""
    seen = 0
    original = reach.reach

    async def failing(*args: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == after:
            raise ConnectionError("interrupted mid-batch")
        return await original(*args)

    reach.reach = failing  # type: ignore[assignment]
    try:
        while (await projection.step(conn)).events:
            pass
    except ConnectionError:
        assert projection.memory is None
    finally:
        reach.reach = original
