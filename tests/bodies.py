"""Events as tests send them: the JSON a scraper posts, the typed event the store takes, and
the POST itself through an in-process client."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from service import events as ev
from tests.conftest import ADMIN

JSON = {"content-type": "application/json"}


def joined(person: str = "ruoming-pang", **data: Any) -> dict[str, Any]:
    """A `member.joined` of a person in MSL, as JSON, introducing both ids by name."""
    return {
        "type": "member.joined",
        "source": {"url": "https://www.lemondeinformatique.fr/a", "published_at": "2025-07-08", "lang": "fr"},
        "data": {
            "person_id": person,
            "person_name": "Someone",
            "org_id": "msl",
            "org_name": "MSL",
            "on": "2025-07",
            **data,
        },
    }


def joined_event(
    person: str, org: str = "msl", key: str | None = None, *, named: bool = True, **data: Any
) -> ev.Event:
    """A `member.joined` as the store takes it."""
    body: dict[str, Any] = {
        "type": "member.joined",
        "source": {"url": "https://example.org/a", "published_at": "2025-07-08"},
        "data": {"person_id": person, "org_id": org, "on": "2025-07", **data},
    }
    if named:
        body["data"] |= {"person_name": person.title(), "org_name": org.upper()}
    if key is not None:
        body["idempotency_key"] = key
    return ev.decode(json.dumps(body).encode())[0]


async def post(client: AsyncTestClient, body: Any, headers: dict[str, str] | None = None) -> Any:  # type: ignore[type-arg]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        "/events", content=raw, headers={**JSON, **(ADMIN if headers is None else headers)}
    )


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and "Traceback" not in response.text
    return body
