"""The events: every claim the news can make, as frozen, tagged msgspec Structs.

One envelope per type, tagged by its `type` field, all in one union decoded by one
module-level decoder. Validation that a type annotation can say (slugs, lengths,
enumerations) is said there; what it cannot (real calendar days, bounds inside a
value's range) is checked in `__post_init__`, which msgspec reports with the JSON path
of the field, like any other validation error.

Pure: imports only msgspec and the standard library.
"""

from __future__ import annotations

import hashlib
import typing
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeAlias

import msgspec

from service import dates

# Person and org ids: written here once, and used by the API's path and query parameters too.
SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,99}$"
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, description="a slug id")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Url = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(https?://[^\s]+|urn:[a-zA-Z0-9][a-zA-Z0-9-]{0,31}:[^\s]+)$",
        max_length=2000,
        description="http(s) URL or URN",
    ),
]
Day = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]
DateValue = Annotated[
    str, msgspec.Meta(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", description="YYYY, YYYY-MM or YYYY-MM-DD")
]
Published = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$",
        description="a day, or an RFC 3339 timestamp",
    ),
]
Lang = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8}){0,3}$")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[int, msgspec.Meta(ge=0, le=10**15)]

Status = Literal["rumor", "reported", "confirmed"]
Role = Literal["member", "lead", "founder", "advisor"]
OrgKind = Literal["company", "lab", "team"]
CompBasis = Literal["total", "annual", "signing"]

STATUS_RANK: Final = {"rumor": 0, "reported": 1, "confirmed": 2}

MAX_BATCH: Final = 1000
MAX_BODY_BYTES: Final = 1024 * 1024


class Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Base of every event part: immutable, and strict about fields it does not know."""


class DateRange(Struct, frozen=True, kw_only=True):
    """`on` as an object: a value narrowed by explicit bounds, with the source's words."""

    value: DateValue | None = None
    earliest: Day | None = None
    latest: Day | None = None
    text: Annotated[str, msgspec.Meta(max_length=200)] | None = None

    def __post_init__(self) -> None:
        _check_date(lambda: dates.resolve(self.value, self.earliest, self.latest))


OnDate: TypeAlias = DateValue | DateRange


def _check_date(check: Any) -> None:
    try:
        check()
    except dates.PartialDateError as error:
        # msgspec turns a ValueError raised here into a ValidationError at the path of
        # the struct; the "on: " prefix lets the API point at the field itself.
        raise ValueError(f"on: {error}") from None


def _check_on(on: OnDate | None) -> None:
    if isinstance(on, str):
        _check_date(lambda: dates.value_range(on))


class Source(Struct, frozen=True, kw_only=True):
    url: Url
    outlet: Name | None = None
    published_at: Published | None = None
    lang: Lang | None = None
    quote: Text | None = None

    def __post_init__(self) -> None:
        if self.published_at is not None:
            published = self.published_at
            try:
                dates.parse_day(published[:10])
            except dates.PartialDateError as error:
                raise ValueError(f"published_at: {error}") from None
            if len(published) > 10:
                try:
                    datetime.fromisoformat(published)
                except ValueError:
                    raise ValueError(
                        f"published_at: {published!r} is not a real RFC 3339 timestamp"
                    ) from None

    @property
    def published_day(self) -> date | None:
        return None if self.published_at is None else date.fromisoformat(self.published_at[:10])


class Money(Struct, frozen=True, kw_only=True):
    """A reported amount: "over 200 million dollars" is a min with no max."""

    min: Amount
    max: Amount | None = None
    currency: Currency

    def __post_init__(self) -> None:
        if self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")


# ---- data payloads, one per type -------------------------------------------------------


class PersonAddedData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    name: Name
    aliases: Annotated[list[Name], msgspec.Meta(max_length=50)] = []


class PersonAliasAddedData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    alias: Name


class OrgAddedData(Struct, frozen=True, kw_only=True):
    org_id: Slug
    name: Name
    kind: OrgKind
    parent_id: Slug | None = None
    parent_name: Name | None = None
    on: OnDate | None = None

    def __post_init__(self) -> None:
        _check_on(self.on)


class OrgRenamedData(Struct, frozen=True, kw_only=True):
    org_id: Slug
    name: Name
    on: OnDate

    def __post_init__(self) -> None:
        _check_on(self.on)


class OrgMovedData(Struct, frozen=True, kw_only=True):
    org_id: Slug
    parent_id: Slug
    parent_name: Name | None = None
    on: OnDate

    def __post_init__(self) -> None:
        _check_on(self.on)


class OrgMergedData(Struct, frozen=True, kw_only=True):
    org_id: Slug
    into_id: Slug
    into_name: Name | None = None
    on: OnDate

    def __post_init__(self) -> None:
        _check_on(self.on)


class OrgDissolvedData(Struct, frozen=True, kw_only=True):
    org_id: Slug
    on: OnDate

    def __post_init__(self) -> None:
        _check_on(self.on)


class MemberJoinedData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    person_name: Name | None = None
    org_id: Slug
    org_name: Name | None = None
    role: Role = "member"
    title: Short | None = None
    from_org_id: Slug | None = None
    from_org_name: Name | None = None
    # Left out: undated, (-inf, the source's published day], as `{"text": ...}` alone.
    on: OnDate | None = None

    def __post_init__(self) -> None:
        _check_on(self.on)


class MemberLeftData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    person_name: Name | None = None
    org_id: Slug
    org_name: Name | None = None
    to_org_id: Slug | None = None
    to_org_name: Name | None = None
    reason: Text | None = None
    # Left out: undated, (-inf, the source's published day], as `{"text": ...}` alone.
    on: OnDate | None = None

    def __post_init__(self) -> None:
        _check_on(self.on)


class MemberRoleChangedData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    org_id: Slug
    role: Role
    title: Short | None = None
    # Left out: undated, (-inf, the source's published day], as `{"text": ...}` alone.
    on: OnDate | None = None

    def __post_init__(self) -> None:
        _check_on(self.on)


class LeadAppointedData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    person_name: Name | None = None
    org_id: Slug
    org_name: Name | None = None
    title: Short | None = None
    # Left out: undated, (-inf, the source's published day], as `{"text": ...}` alone.
    on: OnDate | None = None

    def __post_init__(self) -> None:
        _check_on(self.on)


class CompReportedData(Struct, frozen=True, kw_only=True):
    person_id: Slug
    person_name: Name | None = None
    org_id: Slug
    org_name: Name | None = None
    amount: Money
    basis: CompBasis
    term: Short | None = None
    on: OnDate | None = None

    def __post_init__(self) -> None:
        _check_on(self.on)


class ClaimData(Struct, frozen=True, kw_only=True):
    event_id: uuid.UUID
    reason: Text | None = None


# ---- envelopes -------------------------------------------------------------------------


class Envelope(Struct, tag_field="type", frozen=True, kw_only=True):
    """What a scraper POSTs: one claim from one source."""

    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    status: Status = "reported"
    source: Source | None = None


class PersonAdded(Envelope, tag="person.added", frozen=True, kw_only=True):
    data: PersonAddedData


class PersonAliasAdded(Envelope, tag="person.alias_added", frozen=True, kw_only=True):
    data: PersonAliasAddedData


class OrgAdded(Envelope, tag="org.added", frozen=True, kw_only=True):
    data: OrgAddedData


class OrgRenamed(Envelope, tag="org.renamed", frozen=True, kw_only=True):
    data: OrgRenamedData


class OrgMoved(Envelope, tag="org.moved", frozen=True, kw_only=True):
    data: OrgMovedData


class OrgMerged(Envelope, tag="org.merged", frozen=True, kw_only=True):
    data: OrgMergedData


class OrgDissolved(Envelope, tag="org.dissolved", frozen=True, kw_only=True):
    data: OrgDissolvedData


class MemberJoined(Envelope, tag="member.joined", frozen=True, kw_only=True):
    data: MemberJoinedData


class MemberLeft(Envelope, tag="member.left", frozen=True, kw_only=True):
    data: MemberLeftData


class MemberRoleChanged(Envelope, tag="member.role_changed", frozen=True, kw_only=True):
    data: MemberRoleChangedData


class LeadAppointed(Envelope, tag="lead.appointed", frozen=True, kw_only=True):
    data: LeadAppointedData


class CompReported(Envelope, tag="comp.reported", frozen=True, kw_only=True):
    data: CompReportedData


class ClaimConfirmed(Envelope, tag="claim.confirmed", frozen=True, kw_only=True):
    data: ClaimData


class ClaimDenied(Envelope, tag="claim.denied", frozen=True, kw_only=True):
    data: ClaimData


class ClaimRetracted(Envelope, tag="claim.retracted", frozen=True, kw_only=True):
    data: ClaimData


Event: TypeAlias = (
    PersonAdded
    | PersonAliasAdded
    | OrgAdded
    | OrgRenamed
    | OrgMoved
    | OrgMerged
    | OrgDissolved
    | MemberJoined
    | MemberLeft
    | MemberRoleChanged
    | LeadAppointed
    | CompReported
    | ClaimConfirmed
    | ClaimDenied
    | ClaimRetracted
)

EVENT_TYPES: Final[tuple[type[Envelope], ...]] = typing.get_args(Event)
TYPE_NAMES: Final[tuple[str, ...]] = tuple(str(t.__struct_config__.tag) for t in EVENT_TYPES)
CLAIM_TYPES: Final = frozenset({"claim.confirmed", "claim.denied", "claim.retracted"})

# The version of each type's `data` shape. Bump it when a shape changes, and add the
# upcaster that turns the previous shape into the new one to UPCASTERS below.
SCHEMA_VERSION: Final = dict.fromkeys(TYPE_NAMES, 1)

decoder: Final = msgspec.json.Decoder(Event | list[Event])
_encoder: Final = msgspec.json.Encoder(order="sorted")


def type_name(event: Envelope) -> str:
    return str(event.__struct_config__.tag)


def decode(body: bytes) -> list[Event]:
    """Decode a POST body: one event or an array of them. Raises msgspec errors."""
    decoded = decoder.decode(body)
    return decoded if isinstance(decoded, list) else [decoded]


def content_hash(event: Envelope) -> bytes:
    """A digest of what the event claims, without its idempotency key.

    Encoded with sorted keys and defaults filled in, so two bodies that mean the same
    claim hash the same however their JSON was written.
    """
    payload = msgspec.structs.replace(event, idempotency_key=None)
    return hashlib.sha256(_encoder.encode(payload)).digest()


def content_key(event: Envelope) -> str:
    """The idempotency key a claim gets from its content alone: the same claim, however
    its JSON was written, always gets the same key, so a retried or re-imported claim is a
    replay, never a copy (`import`, `push` and `service.client` all key events this way)."""
    return "import:" + content_hash(event).hex()[:40]


def keyed(event: Event) -> Event:
    """The event with its own idempotency key, or one from its content if it has none."""
    if event.idempotency_key is not None:
        return event
    return msgspec.structs.replace(event, idempotency_key=content_key(event))


def fact_key(event: Event) -> str:
    """Claims about the same fact share this key: type, person, org and role."""
    data: Any = event.data
    parts = [
        type_name(event),
        getattr(data, "person_id", None) or "",
        getattr(data, "org_id", None) or "",
        getattr(data, "role", None) or ("lead" if isinstance(event, LeadAppointed) else ""),
    ]
    if isinstance(event, ClaimConfirmed | ClaimDenied | ClaimRetracted):
        parts[1] = str(event.data.event_id)
    return ":".join(parts)


class Reference(NamedTuple):
    """An id an event refers to: the data field holding it, and the name introducing it."""

    field: str
    id: str
    name: str | None


def referenced_people(event: Event) -> list[Reference]:
    """Person ids an event refers to."""
    match event:
        case PersonAdded(data=d):
            return [Reference("person_id", d.person_id, d.name)]
        case MemberJoined(data=d) | MemberLeft(data=d) | LeadAppointed(data=d) | CompReported(data=d):
            return [Reference("person_id", d.person_id, d.person_name)]
        case PersonAliasAdded(data=d) | MemberRoleChanged(data=d):
            return [Reference("person_id", d.person_id, None)]
    return []


def referenced_orgs(event: Event) -> list[Reference]:
    """Org ids an event refers to; an org may be introduced by the name given beside it."""
    refs: list[Reference] = []
    match event:
        case OrgAdded(data=d):
            refs.append(Reference("org_id", d.org_id, d.name))
            if d.parent_id is not None:
                refs.append(Reference("parent_id", d.parent_id, d.parent_name))
        case OrgRenamed(data=d) | OrgDissolved(data=d) | MemberRoleChanged(data=d):
            refs.append(Reference("org_id", d.org_id, None))
        case OrgMoved(data=d):
            refs += [Reference("org_id", d.org_id, None), Reference("parent_id", d.parent_id, d.parent_name)]
        case OrgMerged(data=d):
            refs += [Reference("org_id", d.org_id, None), Reference("into_id", d.into_id, d.into_name)]
        case MemberJoined(data=d):
            refs.append(Reference("org_id", d.org_id, d.org_name))
            if d.from_org_id is not None:
                refs.append(Reference("from_org_id", d.from_org_id, d.from_org_name))
        case MemberLeft(data=d):
            refs.append(Reference("org_id", d.org_id, d.org_name))
            if d.to_org_id is not None:
                refs.append(Reference("to_org_id", d.to_org_id, d.to_org_name))
        case LeadAppointed(data=d) | CompReported(data=d):
            refs.append(Reference("org_id", d.org_id, d.org_name))
    return refs


# ---- reading stored events back --------------------------------------------------------

# (type, version) -> function taking that version's `data` dict and returning the next
# version's. Pure functions: stored payloads are never rewritten, only read through these.
UPCASTERS: Final[dict[tuple[str, int], Any]] = {}


def upcast(type_: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored `data` payload of any past version to the current shape."""
    current = SCHEMA_VERSION.get(type_)
    if current is None:
        raise ValueError(f"unknown event type {type_!r}")
    if version > current:
        raise ValueError(f"{type_} schema_version {version} is newer than this code ({current})")
    while version < current:
        data = UPCASTERS[(type_, version)](data)
        version += 1
    return data


_TYPE_BY_NAME: Final = dict(zip(TYPE_NAMES, EVENT_TYPES, strict=True))
# Each type's `data` Struct, by type name.
DATA_TYPES: Final[dict[str, type[Struct]]] = {
    name: typing.get_type_hints(envelope)["data"] for name, envelope in _TYPE_BY_NAME.items()
}


def from_stored(
    type_: str,
    version: int,
    data: dict[str, Any],
    status: str,
    source: dict[str, Any] | None,
    idempotency_key: str | None,
) -> Event:
    """Rebuild the typed event from its stored columns, upcasting old payloads."""
    raw = {
        "type": type_,
        "data": upcast(type_, version, data),
        "status": status,
        "source": source,
        "idempotency_key": idempotency_key,
    }
    event: Event = msgspec.convert(raw, _TYPE_BY_NAME[type_])  # type: ignore[assignment]
    return event
