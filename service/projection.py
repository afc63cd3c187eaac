"""The bitemporal cache: the fold's rows written to SQL with the positions they held at.

After each appended event the fold says whose rows may have changed (Dirty); the rows
of those ids are diffed against what the cache holds, vanished rows are closed at that
position and new rows opened from it. The rules stay in the fold: this module only
stores what it outputs.

The fold's State lives in the process that appends, as a cache of the log: appends are
serialised by the log's advisory lock, so whoever holds the lock first folds the
events other processes appended since (without writing: they wrote their rows), then
its own. Any failure drops the State, so a rolled-back append can never leave it ahead
of the log; the next append folds it again from the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any, Final

import msgspec

from service import fold
from service.sql import QUERIES as Q
from service.store import Conn, NewEvent, head, recorded_from_row

_encoder: Final = msgspec.json.Encoder()

Row = fold.MembershipRow | fold.OrgRow | fold.PersonRow | fold.MoveRow


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """One cache table: the row type it stores and how to find the rows of one id."""

    name: str
    row_type: type[Any]
    id_column: str
    rows_of: Callable[[fold.State, str], Iterable[Any]]
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", self.row_type.__struct_fields__)


def _person(state: fold.State, person_id: str) -> Iterable[fold.PersonRow]:
    row = state.person_row(person_id)
    return () if row is None else (row,)


MEMBERSHIPS: Final = Table("membership_rows", fold.MembershipRow, "person_id", fold.State.membership_rows)
MOVES: Final = Table("move_rows", fold.MoveRow, "person_id", fold.State.move_rows)
PEOPLE: Final = Table("person_rows", fold.PersonRow, "person_id", _person)
ORGS: Final = Table("org_rows", fold.OrgRow, "org_id", fold.State.org_rows)
PERSON_TABLES: Final = (MEMBERSHIPS, MOVES, PEOPLE)
TABLES: Final = (*PERSON_TABLES, ORGS)


def row_key(row: Row) -> bytes:
    return hashlib.sha256(_encoder.encode(row)).digest()[:16]


def valid_range(row: Row) -> tuple[date | None, date | None] | None:
    """The days a row speaks of, [lower, upper), for the GiST index; None if not dated."""
    if isinstance(row, fold.MembershipRow):
        upper = _min(row.end_latest if row.ended else None, row.seg_until)
        return _max(row.start_earliest, row.seg_from), upper
    if isinstance(row, fold.OrgRow):
        return row.valid_from, row.valid_until
    return None


def _max(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else min(a, b)


@dataclasses.dataclass(slots=True)
class Changes:
    """What a run of applied events changed, as rows opened and closed at positions."""

    # (table, id, key) -> (row, opened at position)
    opened: dict[tuple[str, str, bytes], tuple[Row, int]] = dataclasses.field(default_factory=dict)
    # rows that were open before this run and closed at a position
    closed: dict[str, list[tuple[str, bytes, int]]] = dataclasses.field(default_factory=dict)
    # rows opened and closed within this run: (row, from, to)
    spans: dict[str, list[tuple[Row, int, int]]] = dataclasses.field(default_factory=dict)

    def close(self, table: str, ident: str, key: bytes, position: int) -> None:
        opened = self.opened.pop((table, ident, key), None)
        if opened is None:
            self.closed.setdefault(table, []).append((ident, key, position))
        elif opened[1] < position:
            self.spans.setdefault(table, []).append((opened[0], opened[1], position))

    def open(self, table: str, ident: str, row: Row, key: bytes, position: int) -> None:
        self.opened[(table, ident, key)] = (row, position)


class Cache:
    """The fold's State for this process, and the rows it last wrote for each id."""

    def __init__(self) -> None:
        self.state: fold.State | None = None
        self.current: dict[tuple[str, str], frozenset[Row]] = {}

    def advance(self, rec: fold.Recorded, changes: Changes | None) -> None:
        """Apply one event; record what changed in `changes` (None: only track it)."""
        assert self.state is not None
        dirty = self.state.apply(rec)
        for table in TABLES:
            ids = dirty.orgs if table is ORGS else dirty.people
            for ident in ids:
                before = self.current.get((table.name, ident), frozenset())
                after = frozenset(table.rows_of(self.state, ident))
                if after is before:
                    continue  # the fold's cache kept them: nothing was re-derived
                # Dirty over-approximates: most ids it names keep their rows, and a set
                # difference finds that without hashing every row's content to a key.
                if changes is not None and after != before:
                    for row in before - after:
                        changes.close(table.name, ident, row_key(row), rec.position)
                    for row in after - before:
                        changes.open(table.name, ident, row, row_key(row), rec.position)
                if after:
                    self.current[(table.name, ident)] = after
                else:
                    self.current.pop((table.name, ident), None)

    def load(self, records: Iterable[fold.Recorded]) -> None:
        """Fold a whole log at once, then take every id's rows as the written ones."""
        for _ in self.loading(records):
            pass

    def loading(self, records: Iterable[fold.Recorded], step: int = 500) -> Iterator[None]:
        """`load`, pausing every `step` events or ids so that a caller can yield.

        Far cheaper than advancing event by event: the fold applies the log without
        deriving a row, and each id's rows are derived once, at the end.
        """
        self.state, self.current = fold.State(), {}
        for n, rec in enumerate(records, start=1):
            self.state.apply(rec)
            if n % step == 0:
                yield
        for table in TABLES:
            ids = self.state.orgs if table is ORGS else self.state.people
            for n, ident in enumerate(list(ids), start=1):
                rows = frozenset(table.rows_of(self.state, ident))
                if rows:
                    self.current[(table.name, ident)] = rows
                if n % step == 0:
                    yield


def as_recorded(new: NewEvent) -> fold.Recorded:
    return fold.Recorded(new.position, new.event_id, new.recorded_at, new.fact_key, new.event)


async def read_log(conn: Conn, after: int, upto: int, batch: int = 5000) -> list[fold.Recorded]:
    out: list[fold.Recorded] = []
    while after < upto:
        rows = await conn.fetch(Q["events_after"], after, upto, None, batch)
        if not rows:
            break
        out.extend(as_recorded(recorded_from_row(r)) for r in rows)
        after = rows[-1]["position"]
    return out


class Projector:
    """Called by store.append inside its transaction, with the events it just inserted."""

    def __init__(self) -> None:
        self.cache = Cache()
        # The cache is one per process: the warm-up and appends take turns with it.
        self._turn = asyncio.Lock()

    async def warm(self, conn: Conn) -> int:
        """Fold the log before an append needs it; returns the position folded to.

        Without it the first append after a start folds the whole log while it holds
        the log's lock, and every writer waits. Here the log is read without that lock
        (positions commit in order, so what is read up to the head is complete) and the
        fold yields to the event loop as it goes, so the process keeps answering; an
        append arriving meanwhile waits for the warm-up, then folds only what is newer.
        """
        async with self._turn:
            if self.cache.state is None:
                records = await read_log(conn, 0, await head(conn))
                try:
                    for _ in self.cache.loading(records):
                        await asyncio.sleep(0)
                except BaseException:
                    self.cache = Cache()
                    raise
            assert self.cache.state is not None
            return self.cache.state.position

    async def __call__(self, conn: Conn, new_events: Sequence[NewEvent]) -> None:
        async with self._turn:
            try:
                await self._catch_up(conn, new_events[0].position - 1)
                changes = Changes()
                for new in new_events:
                    self.cache.advance(as_recorded(new), changes)
                await write(conn, changes)
            except BaseException:
                # The transaction will roll back: a State that saw these events would be
                # ahead of the log. Forget it; the next append folds it again.
                self.cache = Cache()
                raise

    async def _catch_up(self, conn: Conn, upto: int) -> None:
        if self.cache.state is None:
            self.cache.load(await read_log(conn, 0, upto))
            return
        for rec in await read_log(conn, self.cache.state.position, upto):
            self.cache.advance(rec, None)


# ---- writing rows ------------------------------------------------------------------------


_COLUMNS: Final = {table.row_type: table.columns for table in TABLES}


def _record(row: Row, lower: int, upper: int | None) -> dict[str, Any]:
    # Shallow: msgspec encodes the nested sources itself, far faster than asdict's deep copy.
    record: dict[str, Any] = {name: getattr(row, name) for name in _COLUMNS[type(row)]}
    record["row_key"] = row_key(row).hex()
    record["positions"] = f"[{lower},{'' if upper is None else upper})"
    valid = valid_range(row)
    if valid is not None:
        first, last = valid
        empty = first is not None and last is not None and first >= last
        # A role segment may begin on the day its stint ends: it covers no day at all.
        record["valid"] = "empty" if empty else f"[{first or ''},{last or ''})"
    return record


async def write(conn: Conn, changes: Changes) -> None:
    """Close vanished rows and insert new ones, one statement per table and kind."""
    inserts: dict[str, list[dict[str, Any]]] = {}
    for (name, _, _), (row, lower) in changes.opened.items():
        inserts.setdefault(name, []).append(_record(row, lower, None))
    for name, spans in changes.spans.items():
        inserts.setdefault(name, []).extend(_record(row, lower, upper) for row, lower, upper in spans)
    for table in TABLES:
        closed = changes.closed.get(table.name)
        if closed:
            ids, keys, positions = zip(*closed, strict=True)
            await conn.execute(Q[f"close_{table.name}"], list(ids), list(keys), list(positions))
        rows = inserts.get(table.name)
        if rows:
            await conn.execute(Q[f"insert_{table.name}"], _encoder.encode(rows).decode())
