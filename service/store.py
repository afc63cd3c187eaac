"""The log's write and read side on PostgreSQL (asyncpg). SQL lives in sql/queries.sql."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from service import events as ev
from service.sql import QUERIES as Q

# The shape GET /events answers with, declared with the other wire shapes.
from service.wire import StoredEvent as StoredEvent

_json: Final = msgspec.json.Encoder()

# A connection of our own or one borrowed from the pool: the queries take either.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


# Made per event on every append: msgspec Structs build in C, where a frozen dataclass
# sets each field through object.__setattr__.
class Appended(msgspec.Struct, frozen=True, gc=False):
    """What the POST answer says about one event of the batch."""

    event_id: uuid.UUID
    position: int
    recorded_at: datetime
    idempotency_key: str | None
    replayed: bool


class NewEvent(msgspec.Struct, frozen=True, gc=False):
    """An accepted event with the fields the server assigned to it."""

    position: int
    event_id: uuid.UUID
    recorded_at: datetime
    fact_key: str
    event: ev.Event


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's events, all or nothing, and the name of the key that sent them."""

    events: Sequence[ev.Event]
    api_key_name: str | None = None


class AppendError(Exception):
    """A batch the log refuses; nothing of it is stored."""

    def __init__(self, index: int, pointer: str, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.pointer = pointer
        self.reason = reason


class IdempotencyConflict(AppendError):
    """The key was used before for a different claim."""


class UnknownReference(AppendError):
    """The event names an id the log has never seen, without a name to introduce it."""


# What append_many answers for each batch: its events, or why none of them was stored.
Outcome: TypeAlias = "list[Appended] | AppendError"

# Values the database refuses in a row (the checks before the insert are meant to catch
# them all): they belong to the request that sent them, never to the database's health.
# Client-side (asyncpg could not encode an argument) and server-side (SQLSTATE class 22).
DATA_ERRORS: Final[tuple[type[Exception], ...]] = (asyncpg.DataError, asyncpg.exceptions._base.DataError)


async def append(conn: Conn, batch: Sequence[ev.Event], *, api_key_name: str | None = None) -> list[Appended]:
    """Append a batch atomically: all new events are stored, in order, or none is."""
    [outcome] = await append_many(conn, [Batch(batch, api_key_name)])
    if isinstance(outcome, AppendError):
        raise outcome
    return outcome


async def append_many(conn: Conn, batches: Sequence[Batch]) -> list[Outcome]:
    """Append several batches in one transaction (group commit), each all or nothing.

    The batches are resolved in order, each as if appended alone right after the ones
    before it: it sees the ids they introduced and the idempotency keys they stored. A
    batch the log refuses gets its AppendError in its place and stores nothing; the
    others are stored all the same. A database failure raises, and then nothing of any
    batch is stored. One lookup and one call of append_group serve the whole group,
    which writes the log only: the projector folds it afterwards, woken by the insert's
    NOTIFY.

    The group is checked before the log's lock is taken, so the lock is held for one
    statement and its commit, never across a round trip to this process (with several
    API processes, the lock is what every append waits for). append_group, under the
    lock, refuses the group if one of its new keys was stored in the meantime; it is then
    checked again, and finds that key taken. Each retry sees one more key taken, so it ends.
    """
    prepared = [_Prepared.of(batch) for batch in batches]
    while True:
        group = await _Group.look_up(conn, prepared)
        outcomes: list[Outcome] = []
        for batch in prepared:
            try:
                outcomes.append(group.accept(batch))
            except AppendError as error:
                outcomes.append(error)
        if not group.inserted:
            return outcomes
        placed = await _insert(conn, group)
        if placed is not None:
            head, recorded_at = placed
            return group.placed(outcomes, head, recorded_at)


_CLAIM_TYPES: Final = (ev.ClaimConfirmed, ev.ClaimDenied, ev.ClaimRetracted)

# A person or org id an event refers to, with its kind: ("person", Reference(...)).
_Ref: TypeAlias = tuple[str, ev.Reference]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch with what the checks ask of each event, computed once, outside the lock."""

    batch: Batch
    hashes: list[bytes]
    refs: list[list[_Ref]]
    targets: list[uuid.UUID | None]  # the event a claim.* names; None for other types

    @classmethod
    def of(cls, batch: Batch) -> _Prepared:
        events = batch.events
        return cls(
            batch,
            [ev.content_hash(e) for e in events],
            [
                [("person", r) for r in ev.referenced_people(e)] + [("org", r) for r in ev.referenced_orgs(e)]
                for e in events
            ],
            [e.data.event_id if isinstance(e, _CLAIM_TYPES) else None for e in events],
        )


@dataclass(slots=True)
class _Group:
    """The log as the group's next batch sees it: what the lookups found, plus what the
    batches accepted so far added, and the rows they will insert.

    `position` and `recorded_at` start as the lookups saw the log's head; the events
    are numbered after it, and `placed` moves them to where append_group put them.
    """

    head: int
    recorded_at: datetime
    position: int = 0  # the last position taken, from `head` on
    keys: dict[str, tuple[bytes, Appended]] = field(default_factory=dict)  # key -> (content hash, event)
    entities: set[tuple[str, str]] = field(default_factory=set)  # (kind, id) known to the log
    events: set[uuid.UUID] = field(default_factory=set)  # claim targets known to exist
    inserted: list[NewEvent] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    key_names: list[str | None] = field(default_factory=list)
    # (kind, id, first position) of the ids new to the log, in position order.
    new_entities: list[tuple[str, str, int]] = field(default_factory=list)
    _ids: Iterator[uuid.UUID] = field(default_factory=lambda: _event_ids())

    @classmethod
    async def look_up(cls, conn: Conn, prepared: list[_Prepared]) -> _Group:
        """The log's head, and every stored key, id and claim target the group names.

        One round trip, before the log's lock: whatever an append commits after it,
        append_group sees under the lock.
        """
        keys = {e.idempotency_key for p in prepared for e in p.batch.events} - {None}
        wanted = sorted({(kind, ref.id) for p in prepared for refs in p.refs for kind, ref in refs})
        kinds, ids = (list(column) for column in zip(*wanted, strict=True)) if wanted else ([], [])
        targets = {t for p in prepared for t in p.targets if t is not None}
        rows = await conn.fetch(Q["group_lookups"], list(keys), kinds, ids, list(targets))
        [head] = [row for row in rows if row["what"] == "head"]
        group = cls(head["position"], head["recorded_at"], head["position"])
        for row in rows:
            match row["what"]:
                case "key":
                    stored = Appended(row["event_id"], row["position"], row["recorded_at"], row["id"], True)
                    group.keys[row["id"]] = (bytes(row["content_hash"]), stored)
                case "entity":
                    group.entities.add((row["kind"], row["id"]))
                case "event":
                    group.events.add(row["event_id"])
        return group

    def accept(self, prepared: _Prepared) -> list[Appended]:
        """Check one batch against the log as it stands; if it passes, add its events."""
        events, hashes = prepared.batch.events, prepared.hashes
        replays = self._replays(prepared)
        fresh = [i for i in range(len(events)) if i not in replays]
        self._check_references(prepared, fresh)

        # The batch passes: only now does it change what the group's next batches see.
        new_at: dict[int, NewEvent] = {}
        for i in fresh:
            self.position += 1
            new = NewEvent(
                self.position, next(self._ids), self.recorded_at, ev.fact_key(events[i]), events[i]
            )
            new_at[i] = new
            self.inserted.append(new)
            self.hashes.append(hashes[i])
            self.key_names.append(prepared.batch.api_key_name)
            self.events.add(new.event_id)
            for kind, ref in prepared.refs[i]:
                if (kind, ref.id) not in self.entities:
                    self.entities.add((kind, ref.id))
                    self.new_entities.append((kind, ref.id, new.position))
        answer = []
        for i, event in enumerate(events):
            earlier = replays.get(i)
            if isinstance(earlier, Appended):
                answer.append(earlier)
                continue
            new = new_at[i if earlier is None else earlier]
            answer.append(
                Appended(
                    new.event_id, new.position, new.recorded_at, event.idempotency_key, earlier is not None
                )
            )
            if earlier is None and event.idempotency_key is not None:
                replay = Appended(new.event_id, new.position, new.recorded_at, event.idempotency_key, True)
                self.keys[event.idempotency_key] = (hashes[i], replay)
        return answer

    def placed(self, outcomes: list[Outcome], head: int, recorded_at: datetime) -> list[Outcome]:
        """The answers once append_group inserted the events after `head`, at `recorded_at`:
        every answer naming an event of this group (a position past the head the lookups
        saw; stored events are at or before it) moves with the group."""
        shift = head - self.head
        return [
            outcome
            if isinstance(outcome, AppendError)
            else [
                a
                if a.position <= self.head
                else Appended(a.event_id, a.position + shift, recorded_at, a.idempotency_key, a.replayed)
                for a in outcome
            ]
            for outcome in outcomes
        ]

    def _replays(self, prepared: _Prepared) -> dict[int, Appended | int]:
        """Events whose idempotency key is already taken: the same claim is a replay, another a 409.

        A replay answers with the stored event, or with the index of the event earlier
        in this batch that took the key (it has no position yet).
        """
        replays: dict[int, Appended | int] = {}
        taken_here: dict[str, int] = {}
        for i, event in enumerate(prepared.batch.events):
            key = event.idempotency_key
            if key is None:
                continue
            if key in taken_here:
                j = taken_here[key]
                if prepared.hashes[j] != prepared.hashes[i]:
                    raise IdempotencyConflict(
                        i,
                        "/idempotency_key",
                        f"idempotency key {key!r} is used by event {j} of this batch for a different "
                        "event; use a new key for a new claim",
                    )
                replays[i] = replays.get(j, j)
                continue
            taken_here[key] = i
            stored = self.keys.get(key)
            if stored is None:
                continue
            content_hash, original = stored
            if content_hash != prepared.hashes[i]:
                raise IdempotencyConflict(
                    i,
                    "/idempotency_key",
                    f"idempotency key {key!r} was already used for a different event "
                    f"(position {original.position}); use a new key for a new claim",
                )
            replays[i] = original
        return replays

    def _check_references(self, prepared: _Prepared, fresh: list[int]) -> None:
        """Refuse ids the log has never seen unless the event (or an earlier one) names them."""
        introduced: set[tuple[str, str]] = set()
        for i in fresh:
            for kind, ref in prepared.refs[i]:
                if (kind, ref.id) in self.entities or (kind, ref.id) in introduced:
                    continue
                if ref.name is None:
                    raise UnknownReference(
                        i,
                        f"/data/{ref.field}",
                        f"unknown {kind} id {ref.id!r}: introduce it with a name "
                        f"(person_name / org_name, or a {kind}.added event earlier in the batch)",
                    )
                # Introduced here: later events of the batch may refer to it by id alone.
                introduced.add((kind, ref.id))
        for i in fresh:
            target = prepared.targets[i]
            # Events of earlier batches of the group count as stored, as they would be had
            # each batch been appended alone; events of this batch do not, as before.
            if target is not None and target not in self.events:
                raise UnknownReference(i, "/data/event_id", f"no stored event has id {target}")


def _event_ids(chunk: int = 256) -> Iterator[uuid.UUID]:
    """Random (version 4) event ids, their randomness read from the OS a chunk at a time
    rather than one system call per event (uuid.uuid4)."""
    while True:
        random = os.urandom(16 * chunk)
        for i in range(chunk):
            yield uuid.UUID(bytes=random[16 * i : 16 * i + 16], version=4)


async def _insert(conn: Conn, group: _Group) -> tuple[int, datetime] | None:
    """Insert the group after the log's head: (the head it went after, its recorded_at),
    or None, inserting nothing, if one of its keys was stored since the lookups."""
    rows = group.inserted
    kinds, ids, positions = (
        (list(column) for column in zip(*group.new_entities, strict=True))
        if group.new_entities
        else ([], [], [])
    )
    placed = await conn.fetchrow(
        Q["append_group"],
        [r.event_id for r in rows],
        [ev.type_name(r.event) for r in rows],
        [ev.SCHEMA_VERSION[ev.type_name(r.event)] for r in rows],
        [_json.encode(r.event.data).decode() for r in rows],
        [r.event.status for r in rows],
        [None if r.event.source is None else _json.encode(r.event.source).decode() for r in rows],
        [r.event.idempotency_key for r in rows],
        group.hashes,
        [r.fact_key for r in rows],
        group.key_names,
        kinds,
        ids,
        [p - group.head for p in positions],
    )
    return None if placed is None else (placed["head"], placed["recorded_at"])


# ---- reading the log -------------------------------------------------------------------


# The stored `data` and `source` are read through their Structs and encoded again, so they
# come back as every answer is written (the Struct's field order, no spaces), not in
# jsonb's order and spacing. About 10 µs an event.
_data: Final = {name: msgspec.json.Decoder(data_type) for name, data_type in ev.DATA_TYPES.items()}
_source: Final = msgspec.json.Decoder(ev.Source)
_NULL: Final = msgspec.Raw(b"null")


def stored_event(row: asyncpg.Record) -> StoredEvent:
    type_, version = row["type"], row["schema_version"]
    current = ev.SCHEMA_VERSION[type_]
    if version == current:
        data = _json.encode(_data[type_].decode(row["data"]))
    else:
        # Old payloads are upcast on read, never rewritten in the log.
        upcast = ev.upcast(type_, version, msgspec.json.decode(row["data"]))
        data = _json.encode(msgspec.convert(upcast, ev.DATA_TYPES[type_]))
    return StoredEvent(
        type=type_,
        event_id=row["event_id"],
        position=row["position"],
        recorded_at=row["recorded_at"],
        fact_key=row["fact_key"],
        schema_version=current,
        status=row["status"],
        idempotency_key=row["idempotency_key"],
        source=_NULL if row["source"] is None else msgspec.Raw(_json.encode(_source.decode(row["source"]))),
        data=msgspec.Raw(data),
    )


def recorded_from_row(row: asyncpg.Record) -> NewEvent:
    """The typed event of a stored row, for folding."""
    event = ev.from_stored(
        row["type"],
        row["schema_version"],
        msgspec.json.decode(row["data"]),
        row["status"],
        None if row["source"] is None else msgspec.json.decode(row["source"]),
        row["idempotency_key"],
    )
    return NewEvent(row["position"], row["event_id"], row["recorded_at"], row["fact_key"], event)


async def page(
    conn: Conn, after: int, limit: int, types: list[str] | None, upto: int | None = None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["events_after"], after, upto if upto is not None else 2**62, types, limit))


async def by_id(conn: Conn, event_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(Q["event_by_id"], event_id)


async def head(conn: Conn) -> int:
    return int(await conn.fetchval(Q["head_position"]))
