"""One batch of the projector: the log after the checkpoint, folded into the bitemporal cache.

A batch reads the events after the checkpoint in position order, applies them one by one
to a partial fold State (`service.fold.state`), derives again the rows of the ids each
event may have changed (`service.reach`), and compares them with the rows those ids hold
now: a row that vanished is closed at the event's position, a new row opened there. So
every row carries the exact positions during which the log said so, however many events
one batch takes. Then, in one transaction with the checkpoint's move: the rows, the fold's
files of the ids the batch changed, and the structure's indexes.

Memory stays flat in the log's length: the State holds only the people and orgs the
batches needed, loaded from their files in PostgreSQL (`fold_people`, `fold_orgs`) with
the keys of their open rows, and is dropped whenever it holds more claims than a bound,
or after any failure (the batch's transaction rolled back, it would be ahead of the
tables).
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, Final, TypeVar

import asyncpg
import msgspec

from service import events as ev
from service import reach
from service.fold import (
    Applied,
    MembershipRow,
    MoveRow,
    NotLoaded,
    OrgFile,
    OrgRow,
    PersonFile,
    PersonRow,
    Recorded,
    Row,
    State,
    row_key,
)
from service.fold.claims import lead_making
from service.sql import QUERIES as Q
from service.store import Conn, recorded_from_row

T = TypeVar("T")

_pack: Final = msgspec.msgpack.Encoder()
_person_file: Final = msgspec.msgpack.Decoder(PersonFile)
_org_file: Final = msgspec.msgpack.Decoder(OrgFile)
_json: Final = msgspec.json.Encoder()

# How many events a batch takes, and how many claims the State may hold between batches.
BATCH_EVENTS: Final = 1000
MEMORY_CLAIMS: Final = 200_000


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """One cache table: the row type it stores, the id its rows belong to, its columns."""

    name: str
    row_type: type[Any]
    id_column: str
    dated: bool  # has a `valid` range of days

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.row_type.__struct_fields__)

    @property
    def columns(self) -> list[str]:
        return ["row_key", *self.fields, *(["valid"] if self.dated else []), "positions"]


MEMBERSHIPS: Final = Table("membership_rows", MembershipRow, "person_id", True)
MOVES: Final = Table("move_rows", MoveRow, "person_id", False)
NAMES: Final = Table("person_rows", PersonRow, "person_id", False)
VERSIONS: Final = Table("org_rows", OrgRow, "org_id", True)
TABLES: Final = (MEMBERSHIPS, MOVES, NAMES, VERSIONS)


class Superseded(Exception):
    """The checkpoint moved under this projector: another one, or a rebuild, got there."""


def valid_range(row: Row) -> asyncpg.Range[date] | None:
    """The days a row speaks of, [lower, upper), for the GiST index; None if not dated."""
    if isinstance(row, MembershipRow):
        upper = _min(row.end_latest if row.ended else None, row.seg_until)
        lower = _max(row.start_earliest, row.seg_from)
    elif isinstance(row, OrgRow):
        lower, upper = row.valid_from, row.valid_until
    else:
        return None
    if lower is not None and upper is not None and lower >= upper:
        # A role segment may begin on the day its stint ends: it covers no day at all.
        return asyncpg.Range(empty=True)
    return asyncpg.Range(lower, upper)


def _max(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else min(a, b)


def record(table: Table, row: Row, key: bytes, lower: int, upper: int | None) -> tuple[Any, ...]:
    """A row as COPY takes it, in `table.columns` order."""
    values: list[Any] = [key]
    for name in table.fields:
        value = getattr(row, name)
        if isinstance(value, msgspec.Raw):
            value = bytes(value).decode()
        elif name == "aliases":
            value = _json.encode(value).decode()
        values.append(value)
    if table.dated:
        values.append(valid_range(row))
    values.append(asyncpg.Range(lower, upper))
    return tuple(values)


@dataclasses.dataclass(slots=True)
class Changes:
    """What a run of applied events changed, as rows opened and closed at positions."""

    # (table, id, key) -> (row, opened at position)
    opened: dict[tuple[str, str, bytes], tuple[Row, int]] = dataclasses.field(default_factory=dict)
    # rows that were open before this run and closed at a position
    closed: dict[str, list[tuple[str, bytes, int]]] = dataclasses.field(default_factory=dict)
    # rows opened and closed within this run: (row, key, from, to)
    spans: dict[str, list[tuple[Row, bytes, int, int]]] = dataclasses.field(default_factory=dict)

    def close(self, table: str, ident: str, key: bytes, position: int) -> None:
        opened = self.opened.pop((table, ident, key), None)
        if opened is None:
            self.closed.setdefault(table, []).append((ident, key, position))
        elif opened[1] < position:
            self.spans.setdefault(table, []).append((opened[0], key, opened[1], position))

    def open(self, table: str, ident: str, row: Row, key: bytes, position: int) -> None:
        self.opened[(table, ident, key)] = (row, position)

    def rows(self, table: Table) -> list[tuple[Any, ...]]:
        """The rows to insert into a table: those still open, and those that held a while."""
        out = [
            record(table, row, key, lower, None)
            for (name, _, key), (row, lower) in self.opened.items()
            if name == table.name
        ]
        out += [
            record(table, row, key, lower, upper) for row, key, lower, upper in self.spans.get(table.name, ())
        ]
        return out


class Memory:
    """What the projector holds between batches: a partial State at the checkpoint, and
    the keys of the open rows of every id that State holds."""

    def __init__(self, position: int) -> None:
        self.state = State(complete=False, position=position)
        self.keys: dict[tuple[str, str], set[bytes]] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """What one batch did, for logs, metrics and benchmarks."""

    events: int
    position: int
    derived: int
    loaded: int
    queries: int


class Projection:
    """Folds batches of the log into the tables of one schema; one per projector."""

    def __init__(self, *, batch: int = BATCH_EVENTS, memory_claims: int = MEMORY_CLAIMS) -> None:
        self.batch = batch
        self.memory_claims = memory_claims
        self.memory: Memory | None = None

    async def step(self, conn: Conn, *, upto: int | None = None) -> Stats:
        """Apply the next batch of events (none past `upto`) in one transaction."""
        try:
            async with conn.transaction():
                await conn.execute(Q["projection_write_lock"])
                checkpoint = int(await conn.fetchval(Q["checkpoint"]))
                if self.memory is None or self.memory.state.position != checkpoint:
                    self.memory = Memory(checkpoint)
                last = 2**62 if upto is None else upto
                log = await conn.fetch(Q["events_after"], checkpoint, last, None, self.batch)
                if not log:
                    return Stats(0, checkpoint, 0, 0, 0)
                records = [_recorded(r) for r in log]
                batch = Batch(conn, self.memory)
                await batch.run(records)
                await batch.write()
                position = records[-1].position
                moved = await conn.execute(Q["move_checkpoint"], checkpoint, position)
                if moved != "UPDATE 1":
                    raise Superseded(f"the checkpoint is no longer at {checkpoint}")
                await conn.execute(Q["notify_projection"], str(position))
        except BaseException:
            # Rolled back: whatever the State took in is ahead of the tables.
            self.memory = None
            raise
        if self.memory.state.size() > self.memory_claims:
            self.memory = None
        return Stats(len(records), position, batch.derived, batch.loaded, batch.queries)


def _recorded(row: asyncpg.Record) -> Recorded:
    new = recorded_from_row(row)
    return Recorded(new.position, new.event_id, new.fact_key, new.event)


class Batch:
    """One batch's work on the projector's memory, and the changes it will write."""

    def __init__(self, conn: Conn, memory: Memory) -> None:
        self.conn = conn
        self.memory = memory
        self.state = memory.state
        self.changes = Changes()
        # Membership rows this batch derived, by person: the projection's tables no longer
        # hold theirs, so `reach` reads these instead.
        self.derived_rows: dict[str, list[MembershipRow]] = {}
        # Structure the batch added, written before any query walks the structure.
        self._org_people: dict[tuple[str, str], tuple[bool, bool]] = {}
        self._edges: set[tuple[str, str, bool]] = set()
        self.derived = 0
        self.loaded = 0
        self.queries = 0

    async def run(self, records: Sequence[Recorded]) -> None:
        await self._prefetch(records)
        for rec in records:
            applied = await self._retrying(functools.partial(self.state.apply, rec))
            self._index(applied)
            if reach.queries(applied):
                await self._flush_structure()
                self.queries += 1
            dirty = await reach.reach(self.conn, applied, self.derived_rows)
            await self._derive(dirty, rec.position)

    # ---- loading ----

    async def _prefetch(self, records: Sequence[Recorded]) -> None:
        """Load, in a few round trips, every id the batch's events name."""
        people: set[str] = set()
        orgs: set[str] = set()
        targets: set[uuid.UUID] = set()
        for rec in records:
            people.update(r.id for r in ev.referenced_people(rec.event))
            orgs.update(r.id for r in ev.referenced_orgs(rec.event))
            if isinstance(rec.event, ev.ClaimConfirmed | ev.ClaimDenied | ev.ClaimRetracted):
                targets.add(rec.event.data.event_id)
        await self.load(people, orgs, targets)

    async def load(
        self, people: Iterable[str] = (), orgs: Iterable[str] = (), events: Iterable[uuid.UUID] = ()
    ) -> int:
        """Hold these ids (and what claims on these events are about); returns how many
        ids were loaded."""
        state = self.state
        people, orgs = set(people), set(orgs)
        inert: list[uuid.UUID] = []
        if events:
            found = {r["event_id"]: r for r in await self.conn.fetch(Q["claim_targets"], list(events))}
            for event_id in events:
                target = found.get(event_id)
                if target is None:
                    inert.append(event_id)
                elif target["type"] in _MEMBER_TYPES:
                    people.add(target["person_id"])
                    if target["type"] != "member.left":
                        orgs.add(target["org_id"])  # a lead-making claim is its org's too
                elif target["type"] in _ORG_TYPES:
                    orgs.add(target["org_id"])
                else:
                    inert.append(event_id)
            state.mark_inert(inert)
        people = {p for p in people if not state.holds_person(p)}
        orgs = {o for o in orgs if not state.holds_org(o)}
        if people:
            for r in await self.conn.fetch(Q["load_people"], sorted(people)):
                person_id, file = r["id"], r["file"]
                state.load_person(person_id, None if file is None else _person_file.decode(file))
                self.memory.keys[(MEMBERSHIPS.name, person_id)] = set(r["memberships"])
                self.memory.keys[(MOVES.name, person_id)] = set(r["moves"])
                self.memory.keys[(NAMES.name, person_id)] = set(r["names"])
        if orgs:
            for r in await self.conn.fetch(Q["load_orgs"], sorted(orgs)):
                org_id, file = r["id"], r["file"]
                if state.holds_org(org_id):
                    continue
                state.load_org(org_id, None if file is None else _org_file.decode(file))
                self.memory.keys[(VERSIONS.name, org_id)] = set(r["versions"])
        self.loaded += len(people) + len(orgs)
        return len(people) + len(orgs) + len(inert)

    async def _retrying(self, work: Callable[[], T]) -> T:
        """Run pure work on the State, loading what it finds missing until it has all."""
        while True:
            try:
                return work()
            except NotLoaded as missing:
                if not await self.load(missing.people, missing.orgs, missing.events):
                    raise RuntimeError(
                        f"loading did not provide what the fold asked for: {missing}"
                    ) from None

    # ---- deriving ----

    async def _derive(self, dirty: reach.Dirty, position: int) -> None:
        state = self.state
        await self.load(people=(dirty.careers | dirty.named), orgs=dirty.orgs)
        for person_id in sorted(dirty.careers):
            rows = await self._retrying(functools.partial(state.membership_rows, person_id))
            self.derived_rows[person_id] = rows
            self._compare(MEMBERSHIPS, person_id, rows, position)
            self._compare(MOVES, person_id, state.move_rows(person_id), position)
        for person_id in sorted(dirty.named):
            row = state.person_row(person_id)
            self._compare(NAMES, person_id, [] if row is None else [row], position)
        for org_id in sorted(dirty.orgs):
            versions = await self._retrying(functools.partial(state.org_rows, org_id))
            self._compare(VERSIONS, org_id, versions, position)
        self.derived += len(dirty.careers) + len(dirty.named) + len(dirty.orgs)

    def _compare(self, table: Table, ident: str, rows: Sequence[Row], position: int) -> None:
        """Close the rows that vanished and open the new ones, at this position."""
        keyed = {row_key(row): row for row in rows}
        slot = (table.name, ident)
        before = self.memory.keys.get(slot, set())
        if keyed.keys() == before:
            return
        for key in before - keyed.keys():
            self.changes.close(table.name, ident, key, position)
        for key in keyed.keys() - before:
            self.changes.open(table.name, ident, keyed[key], key, position)
        self.memory.keys[slot] = set(keyed)

    # ---- the structure's indexes ----

    def _index(self, applied: Applied) -> None:
        claim = applied.claim
        if claim is None or not applied.new:
            return
        match claim.event:
            case ev.MemberJoined(data=d) | ev.MemberLeft(data=d) | ev.MemberRoleChanged(data=d):
                self._member(
                    d.org_id, d.person_id, lead_making(claim.event), isinstance(d, ev.MemberLeftData)
                )
            case ev.LeadAppointed(data=d):
                self._member(d.org_id, d.person_id, True, False)
            case ev.OrgAdded(data=d) | ev.OrgMoved(data=d) if d.parent_id is not None:
                self._edges.add((d.parent_id, d.org_id, False))
            case ev.OrgMerged(data=d):
                self._edges.add((d.into_id, d.org_id, True))

    def _member(self, org_id: str, person_id: str, lead: bool, leaver: bool) -> None:
        was = self._org_people.get((org_id, person_id), (False, False))
        self._org_people[(org_id, person_id)] = (was[0] or lead, was[1] or leaver)

    async def _flush_structure(self) -> None:
        if self._org_people:
            (orgs, people), flags = zip(*self._org_people, strict=True), list(self._org_people.values())
            await self.conn.execute(
                Q["add_org_people"], list(orgs), list(people), [f[0] for f in flags], [f[1] for f in flags]
            )
            self._org_people = {}
        if self._edges:
            uppers, lowers, merges = zip(*sorted(self._edges), strict=True)
            await self.conn.execute(Q["add_org_edges"], list(uppers), list(lowers), list(merges))
            self._edges = set()

    # ---- writing ----

    async def write(self) -> None:
        """Rows, files and structure, in the batch's transaction."""
        await self._flush_structure()
        for table in TABLES:
            closed = self.changes.closed.get(table.name)
            if closed:
                await self.conn.execute(
                    Q[f"close_{table.name}"],
                    [c[0] for c in closed],
                    [c[1] for c in closed],
                    [c[2] for c in closed],
                )
            rows = self.changes.rows(table)
            if rows:
                await self.conn.copy_records_to_table(table.name, records=rows, columns=table.columns)
        people, orgs = self.state.take_changed()
        if people:
            person_ids = sorted(people)
            files = [_pack.encode(self.state.person_file(p)) for p in person_ids]
            await self.conn.execute(Q["save_people"], person_ids, files)
        if orgs:
            org_ids = sorted(orgs)
            files = [_pack.encode(self.state.org_file(o)) for o in org_ids]
            await self.conn.execute(Q["save_orgs"], org_ids, files)


_MEMBER_TYPES: Final = frozenset({"member.joined", "member.left", "member.role_changed", "lead.appointed"})
_ORG_TYPES: Final = frozenset({"org.added", "org.renamed", "org.moved", "org.merged", "org.dissolved"})
