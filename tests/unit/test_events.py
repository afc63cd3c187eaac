"""The event types: what is accepted, what is refused and why, pure and fast."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from service import events as ev
from service.problems import field_error


def joined(**data: Any) -> dict[str, Any]:
    body = {"person_id": "ruoming-pang", "person_name": "Ruoming Pang", "org_id": "msl", "on": "2025-07"}
    body.update(data)
    return {"type": "member.joined", "source": {"url": "https://example.org/a"}, "data": body}


def decode(obj: Any) -> list[ev.Event]:
    return ev.decode(json.dumps(obj).encode())


def refused(obj: Any) -> tuple[str, str]:
    """The (JSONPath, reason) a refused body is reported with."""
    with pytest.raises(msgspec.ValidationError) as info:
        decode(obj)
    error = field_error(str(info.value))
    return error.field, error.reason


def test_one_event_and_a_batch_decode_to_typed_events() -> None:
    [one] = decode(joined())
    assert isinstance(one, ev.MemberJoined)
    assert one.data.role == "member" and one.status == "reported"
    batch = decode(
        [joined(), {"type": "person.added", "data": {"person_id": "zhifeng-chen", "name": "Zhifeng Chen"}}]
    )
    assert [ev.type_name(e) for e in batch] == ["member.joined", "person.added"]


@pytest.mark.parametrize("name", ev.TYPE_NAMES)
def test_every_type_is_in_the_union(name: str) -> None:
    assert name in ev.SCHEMA_VERSION


@pytest.mark.parametrize(
    ("on", "reason_part"),
    [
        ("2025-02-30", "not a real day"),
        ("2025-13", "no month 13"),
        ("1899", "outside"),
        ("2101-01-01", "outside"),
        ("25-07", "matching regex"),
        ({"value": "2025-07", "earliest": "2025-06-30"}, "outside"),
        ({"value": "2025-07", "earliest": "2025-07-09", "latest": "2025-07-08"}, "after"),
        ({"value": "2025-07", "latest": "2025-08-01"}, "outside"),
        ({"value": "2025", "earliest": "2025-02-29"}, "not a real day"),
    ],
)
def test_impossible_dates_are_refused_at_the_field(on: Any, reason_part: str) -> None:
    path, reason = refused(joined(on=on))
    assert path.startswith("$.data.on"), path
    assert reason_part in reason


def test_leap_day_is_a_real_day() -> None:
    [event] = decode(joined(on="2024-02-29"))
    assert isinstance(event, ev.MemberJoined)


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"person_id": "Ruoming Pang"}, "$.data.person_id"),
        ({"person_id": "-pang"}, "$.data.person_id"),
        ({"person_id": "a" * 101}, "$.data.person_id"),
        ({"org_id": "msl'; drop table events; --"}, "$.data.org_id"),
        ({"role": "intern"}, "$.data.role"),
        ({"person_name": "x" * 201}, "$.data.person_name"),
        ({"person_name": ""}, "$.data.person_name"),
    ],
)
def test_bad_fields_are_refused_with_their_path(patch: dict[str, Any], path: str) -> None:
    assert refused(joined(**patch))[0] == path


def test_source_url_must_be_http_or_urn() -> None:
    body = joined()
    for url in ["ftp://example.org/x", "javascript:alert(1)", "example.org", "https://has space"]:
        body["source"] = {"url": url}
        assert refused(body)[0] == "$.source.url"
    for url in ["https://www.lemondeinformatique.fr/actualites/x.html", "urn:isbn:9780262035613"]:
        body["source"] = {"url": url}
        assert decode(body)


def test_status_unknown_type_and_unknown_fields_are_refused() -> None:
    assert refused({**joined(), "status": "gossip"})[0] == "$.status"
    assert refused({**joined(), "type": "member.hired"})[0] == "$.type"
    assert "unknown field" in refused({**joined(), "extra": 1})[1]
    assert refused(joined(extra=1))[0] == "$.data"


def test_published_at_must_be_a_real_day() -> None:
    body = joined()
    body["source"] = {"url": "https://x.org", "published_at": "2025-02-30"}
    assert refused(body)[0] == "$.source.published_at"
    body["source"] = {"url": "https://x.org", "published_at": "2025-07-08T06:30:00+02:00"}
    assert decode(body)


def test_comp_amount_bounds() -> None:
    body = {
        "type": "comp.reported",
        "data": {
            "person_id": "ruoming-pang",
            "org_id": "msl",
            "amount": {"min": 300, "max": 200, "currency": "USD"},
            "basis": "total",
        },
    }
    assert refused(body)[0] == "$.data.amount"


def test_batch_paths_carry_the_index() -> None:
    path, _ = refused([joined(), joined(on="2025-02-30")])
    assert path == "$[1].data.on"


def test_content_hash_ignores_the_idempotency_key_and_key_order() -> None:
    a = decode({**joined(), "idempotency_key": "one"})[0]
    b = decode({"data": joined()["data"], "source": joined()["source"], "type": "member.joined"})[0]
    assert ev.content_hash(a) == ev.content_hash(b)
    c = decode(joined(on="2025-08"))[0]
    assert ev.content_hash(a) != ev.content_hash(c)


def test_fact_key_is_type_person_org_role() -> None:
    [event] = decode(joined(role="lead"))
    assert ev.fact_key(event) == "member.joined:ruoming-pang:msl:lead"
    claim = decode({"type": "claim.denied", "data": {"event_id": str(uuid.UUID(int=1))}})[0]
    assert ev.fact_key(claim) == f"claim.denied:{uuid.UUID(int=1)}::"


def test_references_name_the_field_and_the_introducing_name() -> None:
    [event] = decode(joined(from_org_id="apple-foundation-models"))
    assert ev.referenced_people(event) == [ev.Reference("person_id", "ruoming-pang", "Ruoming Pang")]
    assert ev.referenced_orgs(event) == [
        ev.Reference("org_id", "msl", None),
        ev.Reference("from_org_id", "apple-foundation-models", None),
    ]


def test_stored_payloads_round_trip_through_from_stored() -> None:
    [event] = decode(joined())
    data = msgspec.json.decode(msgspec.json.encode(event.data))
    source = msgspec.json.decode(msgspec.json.encode(event.source))
    again = ev.from_stored("member.joined", 1, data, "reported", source, None)
    assert again == event


def test_a_newer_schema_version_than_the_code_is_refused() -> None:
    with pytest.raises(ValueError, match="newer"):
        ev.upcast("member.joined", 99, {})
