"""The log's write and read side on PostgreSQL (asyncpg). SQL lives in sql/queries.sql."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from service import events as ev
from service.sql import QUERIES as Q

_json: Final = msgspec.json.Encoder()

# A connection of our own or one borrowed from the pool: the queries take either.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


@dataclass(frozen=True, slots=True)
class Appended:
    """What the POST answer says about one event of the batch."""

    event_id: uuid.UUID
    position: int
    recorded_at: datetime
    idempotency_key: str | None
    replayed: bool


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An accepted event with the fields the server assigned to it."""

    position: int
    event_id: uuid.UUID
    recorded_at: datetime
    fact_key: str
    event: ev.Event


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


# Called inside the append transaction with the events just inserted, so projections
# are written in the same transaction as the log (read-your-writes).
Projector = Callable[[Conn, Sequence[NewEvent]], Awaitable[None]]


async def append(
    conn: Conn,
    batch: Sequence[ev.Event],
    *,
    api_key_name: str | None = None,
    project: Projector | None = None,
) -> list[Appended]:
    """Append a batch atomically: all new events are stored, in order, or none is."""
    hashes = [ev.content_hash(e) for e in batch]
    async with conn.transaction():
        await conn.execute(Q["lock_log"])
        head = await conn.fetchrow(Q["log_head"])
        assert head is not None  # an aggregate always returns its one row
        position, recorded_at = head["position"], head["recorded_at"]

        replays = await _replays(conn, batch, hashes)
        fresh = [i for i in range(len(batch)) if i not in replays]
        await _check_references(conn, batch, fresh)

        inserted: list[NewEvent] = []
        for i in fresh:
            position += 1
            inserted.append(NewEvent(position, uuid.uuid4(), recorded_at, ev.fact_key(batch[i]), batch[i]))
        if inserted:
            await _insert(conn, inserted, [hashes[i] for i in fresh], api_key_name)
            if project is not None:
                await project(conn, inserted)

    new_by_index = dict(zip(fresh, inserted, strict=True))
    answer = []
    for i, event in enumerate(batch):
        if i in replays:
            answer.append(replays[i])
        else:
            new = new_by_index[i]
            answer.append(Appended(new.event_id, new.position, new.recorded_at, event.idempotency_key, False))
    return answer


async def _replays(conn: Conn, batch: Sequence[ev.Event], hashes: list[bytes]) -> dict[int, Appended]:
    """Events whose idempotency key is already stored: the same claim is a replay, another a 409.

    Checked under the log lock, so fifty concurrent posts of one key find each other
    here instead of racing to the unique index.
    """
    keys = [e.idempotency_key for e in batch if e.idempotency_key is not None]
    if not keys:
        return {}
    stored = {row["idempotency_key"]: row for row in await conn.fetch(Q["find_by_idempotency_keys"], keys)}
    replays: dict[int, Appended] = {}
    for i, event in enumerate(batch):
        row = stored.get(event.idempotency_key)
        if row is None:
            continue
        if bytes(row["content_hash"]) != hashes[i]:
            raise IdempotencyConflict(
                i,
                "/idempotency_key",
                f"idempotency key {event.idempotency_key!r} was already used for a different event "
                f"(position {row['position']}); use a new key for a new claim",
            )
        replays[i] = Appended(
            row["event_id"], row["position"], row["recorded_at"], event.idempotency_key, True
        )
    return replays


async def _check_references(conn: Conn, batch: Sequence[ev.Event], fresh: list[int]) -> None:
    """Refuse ids the log has never seen unless the event (or an earlier one) names them."""
    refs = {
        i: [("person", r) for r in ev.referenced_people(batch[i])]
        + [("org", r) for r in ev.referenced_orgs(batch[i])]
        for i in fresh
    }
    wanted = sorted({(kind, ref.id) for found in refs.values() for kind, ref in found})
    known: set[tuple[str, str]] = set()
    if wanted:
        kinds, ids = zip(*wanted, strict=True)
        known = {(r["kind"], r["id"]) for r in await conn.fetch(Q["known_entities"], list(kinds), list(ids))}
    for i in fresh:
        for kind, ref in refs[i]:
            if (kind, ref.id) in known:
                continue
            if ref.name is None:
                raise UnknownReference(
                    i,
                    f"/data/{ref.field}",
                    f"unknown {kind} id {ref.id!r}: introduce it with a name "
                    f"(person_name / org_name, or a {kind}.added event earlier in the batch)",
                )
            # Introduced here: later events of the batch may refer to it by id alone.
            known.add((kind, ref.id))

    claims = {i: batch[i].data.event_id for i in fresh if type(batch[i]) in _CLAIM_TYPES}  # type: ignore[union-attr]
    if claims:
        found = {r["event_id"] for r in await conn.fetch(Q["events_by_ids"], list(claims.values()))}
        for i, target in claims.items():
            if target not in found:
                raise UnknownReference(i, "/data/event_id", f"no stored event has id {target}")


_CLAIM_TYPES: Final = (ev.ClaimConfirmed, ev.ClaimDenied, ev.ClaimRetracted)


async def _insert(conn: Conn, rows: list[NewEvent], hashes: list[bytes], api_key_name: str | None) -> None:
    await conn.execute(
        Q["insert_events"],
        [r.position for r in rows],
        [r.event_id for r in rows],
        [ev.type_name(r.event) for r in rows],
        [ev.SCHEMA_VERSION[ev.type_name(r.event)] for r in rows],
        [_json.encode(r.event.data).decode() for r in rows],
        [r.event.status for r in rows],
        [None if r.event.source is None else _json.encode(r.event.source).decode() for r in rows],
        [r.event.idempotency_key for r in rows],
        hashes,
        [r.fact_key for r in rows],
        rows[0].recorded_at,
        api_key_name,
    )
    entities = sorted(
        {("person", ref.id, r.position) for r in rows for ref in ev.referenced_people(r.event)}
        | {("org", ref.id, r.position) for r in rows for ref in ev.referenced_orgs(r.event)},
        key=lambda entity: entity[2],
    )
    if entities:
        # ON CONFLICT DO NOTHING keeps the first position that mentioned the id;
        # sorting by position makes "first" the earliest even within this batch.
        kinds, ids, positions = zip(*entities, strict=True)
        await conn.execute(Q["insert_entities"], list(kinds), list(ids), list(positions))


# ---- reading the log -------------------------------------------------------------------


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope as accepted, plus what the server assigned."""

    type: str
    event_id: uuid.UUID
    position: int
    recorded_at: datetime
    fact_key: str
    schema_version: int
    status: str
    idempotency_key: str | None
    source: msgspec.Raw | None
    data: msgspec.Raw


def stored_event(row: asyncpg.Record) -> StoredEvent:
    type_, version = row["type"], row["schema_version"]
    data = row["data"].encode()
    current = ev.SCHEMA_VERSION[type_]
    if version != current:
        # Old payloads are upcast on read, never rewritten in the log.
        data = _json.encode(ev.upcast(type_, version, msgspec.json.decode(data)))
    return StoredEvent(
        type=type_,
        event_id=row["event_id"],
        position=row["position"],
        recorded_at=row["recorded_at"],
        fact_key=row["fact_key"],
        schema_version=current,
        status=row["status"],
        idempotency_key=row["idempotency_key"],
        source=None if row["source"] is None else msgspec.Raw(row["source"].encode()),
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
