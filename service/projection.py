"""One batch of the projector: the log after the checkpoint, folded into the bitemporal cache.

A batch reads the events after the checkpoint in position order, applies them one by one
to a partial fold State (`service.fold.state`), derives again the rows of the ids each
event may have changed (`service.reach`), and compares them with the rows those ids hold
now: a row that vanished is closed at the event's position, a new row opened there. So
every row carries the exact positions during which the log said so, however many events
one batch takes. Then, in one transaction with the checkpoint's move: the rows, what the
fold keeps of the batch's new claims and changed statuses, and the structure's indexes.

Memory stays flat in the log's length: the State holds only the people and orgs the
batches needed, loaded from PostgreSQL (`fold_people`, `fold_orgs`, `fold_claims`,
`fold_statuses`) with the keys of their open rows, and is dropped whenever it holds
more claims than a bound, or after any failure (the batch's transaction rolled back,
it would be ahead of the tables).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import time
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
    FoldChanges,
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
    StoredClaim,
    row_key,
)
from service.fold.claims import Kept
from service.sql import QUERIES as Q
from service.store import Conn, recorded_from_row

T = TypeVar("T")

_pack: Final = msgspec.msgpack.Encoder()
_kept: Final = msgspec.msgpack.Decoder(Kept)
_names: Final = msgspec.json.Decoder(list[str])
_json: Final = msgspec.json.Encoder()

# How many events a batch takes, and how many claims the State may hold between batches.
BATCH_EVENTS: Final = 1000
MEMORY_CLAIMS: Final = 25_000
# A batch is mostly Python that never waits (a thousand events take about half a second
# to fold), and in `serve` the API answers on the same event loop: the batch lets it in
# this often, so a request waits milliseconds for the projector, not the whole batch.
TURN_SECONDS: Final = 0.005
# Python's cyclic GC walks every container it tracks, and the State is hundreds of
# thousands of them, none garbage while it is kept: full collections stalled the event
# loop for up to 170 ms and took 10 to 25 % of the catching up (`bench.projector`
# reports the loop's pauses; `--no-freeze` shows them without this).
# So what a batch leaves is frozen out of collections (gc.freeze), and given back
# (gc.unfreeze) when the State is dropped, after a failure, and every UNFREEZE_BATCHES
# batches, so that cyclic garbage of anything else in the process is collected too.
UNFREEZE_BATCHES: Final = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """One cache table: the row type it stores, the id its rows belong to, its columns."""

    name: str
    row_type: type[Any]
    dated: bool  # has a `valid` range of days

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.row_type.__struct_fields__)

    @property
    def columns(self) -> list[str]:
        return ["row_key", *self.fields, *(["valid"] if self.dated else []), "positions"]


MEMBERSHIPS: Final = Table("membership_rows", MembershipRow, True)
MOVES: Final = Table("move_rows", MoveRow, False)
NAMES: Final = Table("person_rows", PersonRow, False)
VERSIONS: Final = Table("org_rows", OrgRow, True)
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
        self._frozen = 0  # batches since the last gc.unfreeze

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
            self._thaw()
            raise
        if self.memory.state.size() > self.memory_claims:
            self.memory = None
            self._thaw()
        elif self._frozen >= UNFREEZE_BATCHES:
            self._thaw()
        else:
            gc.freeze()
            self._frozen += 1
        return Stats(len(records), position, batch.derived, batch.loaded, batch.queries)

    def _thaw(self) -> None:
        gc.unfreeze()
        self._frozen = 0


async def project_up_to(
    conn: Conn, projection: Projection, upto: int, progress: Callable[[int], None] | None = None
) -> int:
    """Apply batches until the checkpoint reaches `upto` (or the log ends); returns it."""
    position = int(await conn.fetchval(Q["checkpoint"]))
    while position < upto:
        stats = await projection.step(conn, upto=upto)
        if not stats.events:
            break
        position = stats.position
        if progress is not None:
            progress(position)
    return position


def _claims(record: asyncpg.Record) -> list[StoredClaim]:
    """The claims of a loaded id, each with its status now: the one a later claim.* set,
    or the one it was recorded with."""
    out = []
    positions = record["positions"] or []
    for position, packed, status, since in zip(
        positions, record["claims"] or [], record["statuses"] or [], record["since"] or [], strict=True
    ):
        kept = _kept.decode(packed)
        out.append(
            StoredClaim(
                position,
                kept.event_id,
                kept.fact_key,
                kept.event.status if status is None else status,
                position if since is None else since,
                kept.event,
            )
        )
    return out


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
        # Structure the batch added, written before any query walks the structure:
        # (org, person) -> whether they left it.
        self._org_people: dict[tuple[str, str], bool] = {}
        self._edges: set[tuple[str, str, bool]] = set()
        self.derived = 0
        self.loaded = 0
        self.queries = 0

    async def run(self, records: Sequence[Recorded]) -> None:
        await self._prefetch(records)
        turn = time.monotonic()
        for rec in records:
            if time.monotonic() - turn > TURN_SECONDS:
                await asyncio.sleep(0)
                turn = time.monotonic()
            applied = await self._retrying(functools.partial(self.state.apply, rec))
            self._index(applied)
            if reach.walks_structure(applied):
                await self._flush_structure()
                self.queries += 1
            dirty = await reach.reach(self.conn, self.state, applied, self.derived_rows)
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
            found = {r["id"]: r for r in await self.conn.fetch(Q["load_people"], sorted(people))}
            for person_id in people:
                r = found.get(person_id)
                if r is None:
                    state.load_person(person_id, None)
                else:
                    state.load_person(
                        person_id, PersonFile(r["name"], _names.decode(r["aliases"]), _claims(r))
                    )
                for table, column in ((MEMBERSHIPS, "memberships"), (MOVES, "moves"), (NAMES, "names")):
                    self.memory.keys[(table.name, person_id)] = set(() if r is None else r[column])
        if orgs:
            found = {r["id"]: r for r in await self.conn.fetch(Q["load_orgs"], sorted(orgs))}
            for org_id in orgs | found.keys():
                if state.holds_org(org_id):
                    continue
                r = found.get(org_id)
                if r is None:
                    state.load_org(org_id, None)
                    self.memory.keys[(VERSIONS.name, org_id)] = set()
                    continue
                held = _claims(r)
                holders = r["holders"] or []
                claims = [c for c, h in zip(held, holders, strict=True) if h == "org"]
                leads = [c for c, h in zip(held, holders, strict=True) if h == "lead"]
                state.load_org(org_id, OrgFile(r["name"], claims, leads, _names.decode(r["merged_in"])))
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
        await self.load(people=dirty.careers | dirty.moves | dirty.named, orgs=dirty.orgs)
        for person_id in sorted(dirty.careers):
            rows = await self._retrying(functools.partial(state.membership_rows, person_id))
            self.derived_rows[person_id] = rows
            self._compare(MEMBERSHIPS, person_id, rows, position)
        for person_id in sorted(dirty.moves):
            self._compare(MOVES, person_id, state.move_rows(person_id), position)
        for person_id in sorted(dirty.named):
            row = state.person_row(person_id)
            self._compare(NAMES, person_id, [] if row is None else [row], position)
        for org_id in sorted(dirty.orgs):
            versions = await self._retrying(functools.partial(state.org_rows, org_id))
            self._compare(VERSIONS, org_id, versions, position)
        self.derived += len(dirty.careers) + len(dirty.moves) + len(dirty.named) + len(dirty.orgs)

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
            case ev.MemberJoined(data=d) | ev.MemberRoleChanged(data=d) | ev.LeadAppointed(data=d):
                self._org_people.setdefault((d.org_id, d.person_id), False)
            case ev.MemberLeft(data=d):
                self._org_people[(d.org_id, d.person_id)] = True
            case ev.OrgAdded(data=d) | ev.OrgMoved(data=d) if d.parent_id is not None:
                self._edges.add((d.parent_id, d.org_id, False))
            case ev.OrgMerged(data=d):
                self._edges.add((d.into_id, d.org_id, True))

    async def _flush_structure(self) -> None:
        if self._org_people:
            pairs, leavers = list(self._org_people), list(self._org_people.values())
            await self.conn.execute(
                Q["add_org_people"], [o for o, _ in pairs], [p for _, p in pairs], leavers
            )
            self._org_people = {}
        if self._edges:
            edges = sorted(self._edges)
            await self.conn.execute(
                Q["add_org_edges"], [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges]
            )
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
        await self._save(self.state.take_changes())

    async def _save(self, changes: FoldChanges) -> None:
        """The fold's new claims (once each, never rewritten), changed statuses and names."""
        if changes.claims:
            await self.conn.copy_records_to_table(
                "fold_claims",
                records=[(h, i, c.position, _pack.encode(c.kept())) for h, i, c in changes.claims],
                columns=["holder", "id", "position", "claim"],
            )
        if changes.statuses:
            positions = sorted(changes.statuses)
            await self.conn.execute(
                Q["save_statuses"],
                positions,
                [changes.statuses[p][0] for p in positions],
                [changes.statuses[p][1] for p in positions],
            )
        if changes.people:
            ids = sorted(changes.people)
            headers = [self.state.person_header(p) for p in ids]
            await self.conn.execute(
                Q["save_people"], ids, [h[0] for h in headers], [_json.encode(h[1]).decode() for h in headers]
            )
        if changes.orgs:
            ids = sorted(changes.orgs)
            headers = [self.state.org_header(o) for o in ids]
            await self.conn.execute(
                Q["save_orgs"], ids, [h[0] for h in headers], [_json.encode(h[1]).decode() for h in headers]
            )


_MEMBER_TYPES: Final = frozenset({"member.joined", "member.left", "member.role_changed", "lead.appointed"})
_ORG_TYPES: Final = frozenset({"org.added", "org.renamed", "org.moved", "org.merged", "org.dissolved"})
