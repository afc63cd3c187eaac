"""The shapes on the wire that the API and its client share, declared once.

The API encodes its answers from these Structs and `service.client` decodes the same
bytes into them, so a field renamed here is renamed on both sides. Problem documents
(RFC 9457) too: `errors` lists what was wrong field by field, `field` being the JSONPath
msgspec reports (`$[3].data.on`) or a parameter's name, and `pointer` the same place as
an RFC 6901 JSON Pointer.

The answers of the reads are `service.answers`' Structs (Roster, Timeline, OrgView, Tree,
Flows, StateView). Pure: msgspec and the standard library only, so a scraper that
installs the package for its client loads neither the server nor a database driver.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Final

import msgspec

from service import answers
from service import events as ev

PROBLEM_JSON: Final = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    """What is wrong at one place of the request: `field` is a JSONPath (`$[3].data.on`) or a
    parameter name, `pointer` the same place as a JSON Pointer (`/3/data/on`; empty for a
    parameter)."""

    field: str
    pointer: str
    reason: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem document; `errors` lists field-level reasons, when there are any."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] = []


_AT: Final = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_FIELD_PREFIX: Final = re.compile(r"^(?P<field>[a-z_]+): (?P<reason>.*)$", re.DOTALL)
_STEP: Final = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")


def pointer_of(path: str) -> str:
    """`$[0].data.on` -> `/0/data/on`."""
    return "".join("/" + (m.group(1) or m.group(2) or "") for m in _STEP.finditer(path[1:]))


def field_error(message: str, *, base: str = "$") -> FieldError:
    """Turn a msgspec validation message into a field-level error."""
    match = _AT.match(message)
    assert match is not None
    reason, path = match.group("reason"), match.group("path") or base
    # Checks in __post_init__ can only report the struct's path; they prefix the
    # field's name ("on: ...") so the answer can point at the field itself.
    prefixed = _FIELD_PREFIX.match(reason)
    if prefixed and not path.endswith("." + prefixed.group("field")):
        path, reason = f"{path}.{prefixed.group('field')}", prefixed.group("reason")
    elif prefixed:
        reason = prefixed.group("reason")
    return FieldError(field=path, pointer=pointer_of(path), reason=reason)


# ---- the log -------------------------------------------------------------------------------


class Accepted(msgspec.Struct, frozen=True):
    """What the POST answer says about one event of the batch."""

    event_id: uuid.UUID
    position: int
    # Encoded by msgspec, as in GET /events: RFC 3339 in UTC, with a `Z`.
    recorded_at: datetime
    idempotency_key: str | None
    replayed: bool


class AppendAnswer(msgspec.Struct, frozen=True):
    events: list[Accepted]


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
    # The stored JSON, as the typed event encodes it (`null` for no source; Raw has no
    # None, which msgspec could not decode): `event()` reads them.
    source: msgspec.Raw
    data: msgspec.Raw

    def event(self) -> ev.Event:
        """The typed event, as it was posted (with its idempotency key)."""
        source = bytes(self.source)
        body = b'{"type":%s,"status":%s,"idempotency_key":%s,"source":%s,"data":%s}' % (
            msgspec.json.encode(self.type),
            msgspec.json.encode(self.status),
            msgspec.json.encode(self.idempotency_key),
            source,
            bytes(self.data),
        )
        event: ev.Event = _event.decode(body)
        return event


_event: Final = msgspec.json.Decoder(ev.Event)


class EventPage(msgspec.Struct, frozen=True):
    events: list[StoredEvent]
    next: int | None


# ---- lists, paged by id ----------------------------------------------------------------------


class PersonSummary(msgspec.Struct, frozen=True):
    person_id: str
    name: str | None
    aliases: tuple[str, ...]


class People(msgspec.Struct, frozen=True):
    as_of: int
    people: list[PersonSummary]
    # The id to pass as `after` for the next page; null on the last one.
    next: str | None


class Orgs(msgspec.Struct, frozen=True):
    on: date
    as_of: int
    orgs: list[answers.OrgView]
    next: str | None


class StatePage(answers.StateView, frozen=True, kw_only=True):
    next: str | None
