"""The rows the fold outputs: one shape each, declared once.

The fold builds them, the projector stores them in the bitemporal cache, the read side
decodes the cache's JSON straight into them, and `service.answers` answers from them.
A row's `sources` are JSON (msgspec.Raw): the fold encodes them once when it builds the
row, the cache stores that text as is (a `json` column keeps it byte for byte), and
answers pass it through without decoding it.

Rows are immutable values made by the hundred thousand: msgspec Structs build and
compare in C, and hold no cycles, so the garbage collector need not track them. They
are told apart by `row_key`, a digest of their content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date
from typing import Final, TypeAlias

import msgspec

_encoder: Final = msgspec.json.Encoder()


class SourceRef(msgspec.Struct, frozen=True, gc=False):
    """One claim behind a row, with its own current status."""

    event_id: str
    position: int
    type: str
    status: str
    url: str | None
    outlet: str | None
    published_at: str | None
    lang: str | None
    quote: str | None


SOURCES: Final = msgspec.json.Decoder(tuple[SourceRef, ...])


def sources_json(sources: Iterable[SourceRef]) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode(tuple(sources)))


class PersonRow(msgspec.Struct, frozen=True, gc=False):
    person_id: str
    name: str | None
    aliases: tuple[str, ...]


class OrgRow(msgspec.Struct, frozen=True, gc=False):
    """One valid-time version of an org: [valid_from, valid_until), None being infinite."""

    org_id: str
    name: str | None
    kind: str | None
    parent_id: str | None
    valid_from: date | None
    valid_until: date | None
    ended: bool


class MembershipRow(msgspec.Struct, frozen=True, gc=False):
    """One role segment of one stint of a person in an org.

    Start and end are partial dates (start_earliest None is -inf, start_latest None is
    +inf; with `ended` False there is no known end). [seg_from, seg_until) is the part of
    the stint's valid time in which this role and title hold; None is open. `stint` is the
    position of the claim that started the stint (its first join report, an appointment,
    a merge): two stints may otherwise say the same of their org, fact and start.
    """

    person_id: str
    org_id: str
    role: str
    title: str | None
    start_value: str | None
    start_earliest: date | None
    start_latest: date | None
    ended: bool
    end_value: str | None
    end_earliest: date | None
    end_latest: date | None
    seg_from: date | None
    seg_until: date | None
    status: str
    fact_key: str
    stint: int
    sources: msgspec.Raw


class MoveRow(msgspec.Struct, frozen=True, gc=False):
    person_id: str
    from_org_id: str
    to_org_id: str
    on_value: str | None
    on_earliest: date | None
    on_latest: date | None
    sources: msgspec.Raw


Row: TypeAlias = MembershipRow | MoveRow | PersonRow | OrgRow


def row_key(row: Row) -> bytes:
    """What tells one row from another: a digest of everything it says."""
    return hashlib.blake2b(_encoder.encode(row), digest_size=16).digest()


def version_on(rows: Iterable[OrgRow], on: date) -> OrgRow | None:
    """The version of an org that holds on a day, or None when it does not exist then."""
    for row in rows:
        if (row.valid_from is None or row.valid_from <= on) and (
            row.valid_until is None or on < row.valid_until
        ):
            return row
    return None
