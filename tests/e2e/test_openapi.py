"""openapi.yaml is the contract of record: generated from the app, valid, complete, served as is."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate

from service import events, openapi
from service.app import ROUTES
from tests.conftest import ROOT

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def generated() -> str:
    return openapi.generated()


def checked_in() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


REGENERATE = "python -m service.openapi"


def same_as_checked_in(text: str, source: str) -> None:
    """Fail, showing the diff and how to regenerate the file, unless `text` is openapi.yaml."""
    on_disk = (ROOT / "openapi.yaml").read_text()
    if text == on_disk:
        return
    diff = list(
        difflib.unified_diff(
            on_disk.splitlines(keepends=True), text.splitlines(keepends=True), "openapi.yaml", source
        )
    )
    shown = "".join(diff[:400]) + (f"... and {len(diff) - 400} more lines\n" if len(diff) > 400 else "")
    pytest.fail(
        f"openapi.yaml drifted from {source}: run `{REGENERATE}` and commit openapi.yaml.\n{shown}",
        pytrace=False,
    )


def test_the_checked_in_contract_is_the_apps() -> None:
    same_as_checked_in(generated(), "the app's contract")


def test_the_contract_is_valid_openapi() -> None:
    document = checked_in()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_in_the_contract_but_metrics() -> None:
    documented = {(path, method.upper()) for path, method, _ in operations(checked_in())}
    expected = set()
    # Every route of ROUTES, those of the Routers in it included (the schema's own are not).
    app = Litestar(route_handlers=ROUTES, openapi_config=None)
    for route in app.routes:
        assert isinstance(route, HTTPRoute)
        for handler in route.route_handlers:
            if handler.include_in_schema is False:
                continue
            template = route.path_format
            expected |= {(template, method) for method in handler.http_methods}
    assert documented == expected
    assert "/metrics" not in checked_in()["paths"]


def test_every_error_is_a_problem_and_every_success_has_a_schema() -> None:
    for path, method, op in operations(checked_in()):
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), (path, method)
        for code, response in responses.items():
            content = response.get("content", {})
            assert response["headers"]["X-Request-ID"], (path, method, code)
            if code == "304":
                assert not content
            elif int(code) >= 400 and path not in {"/healthz", "/readyz"}:
                assert content == {"application/problem+json": {"schema": PROBLEM}}, (path, method, code)
            else:
                [(media, body)] = content.items()
                # The live feed is an event stream; every other answer is JSON.
                expected = "text/event-stream" if path == "/events/stream" else "application/json"
                assert media == expected and body["schema"], (path, method, code)
        if path not in {"/healthz", "/readyz"}:
            assert {"401", "429", "500", "503"} <= set(responses), (path, method)
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in responses, (path, method)
    problem = checked_in()["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "instance", "errors"}
    field_error = checked_in()["components"]["schemas"]["FieldError"]
    assert set(field_error["properties"]) == {"field", "pointer", "reason"}


def test_security_writes_need_a_key_reads_need_none() -> None:
    document = checked_in()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["apiKeyAuth"]["in"] == "header" and schemes["apiKeyAuth"]["name"] == "X-API-Key"
    for path, method, op in operations(document):
        if (path, method) == ("/events", "post"):
            assert op["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
            assert {"401", "403", "409", "413", "415", "422"} <= set(op["responses"])
        elif path in {"/healthz", "/readyz"}:
            assert "security" not in op
        else:
            # Public: typed as needing no key (a key sent is still checked, and
            # HIRING_NEWS_READ_KEY_REQUIRED, off by default, asks for one: the 401).
            assert "security" not in op, path
            assert "401" in op["responses"]
            assert "304" in op["responses"] or path.startswith("/events")


def test_the_request_body_is_the_event_schemas() -> None:
    """Every event type's definition in the contract is the one in schemas/, word for word."""
    document = checked_in()
    components = document["components"]["schemas"]
    body = document["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch, one = body["anyOf"]
    assert batch["type"] == "array" and batch["minItems"] == 1 and batch["maxItems"] == events.MAX_BATCH
    assert one["discriminator"]["propertyName"] == "type"
    assert set(one["discriminator"]["mapping"]) == set(events.TYPE_NAMES)
    for name in events.TYPE_NAMES:
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        for definition, body_schema in schema["$defs"].items():
            as_component = json.loads(json.dumps(body_schema).replace("#/$defs/", "#/components/schemas/"))
            assert components[definition] == as_component, (name, definition)


def test_a_stored_events_data_follows_its_type() -> None:
    stored = checked_in()["components"]["schemas"]["StoredEvent"]
    branches = {b["if"]["properties"]["type"]["const"]: b["then"] for b in stored["allOf"]}
    assert set(branches) == set(events.TYPE_NAMES)
    assert branches["member.joined"]["properties"]["data"] == {
        "$ref": "#/components/schemas/MemberJoinedData"
    }


async def test_the_app_serves_the_contract(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    as_yaml = await client.get("/schema/openapi.yaml")
    assert as_yaml.status_code == 200
    same_as_checked_in(as_yaml.text, "GET /schema/openapi.yaml")
    as_json = await client.get("/schema/openapi.json")
    assert as_json.json() == checked_in()
    assert as_json.headers["x-content-type-options"] == "nosniff"


def test_the_contract_is_the_same_whatever_the_hash_seed(tmp_path: Path) -> None:
    """`python -m service.openapi` writes the checked-in file under any PYTHONHASHSEED (the
    read endpoints' response headers once came out in set order: these seeds swapped them)."""
    for seed in ("0", "1", "3", "4"):
        target = tmp_path / f"openapi-{seed}.yaml"
        done = subprocess.run(
            [sys.executable, "-m", "service.openapi", str(target)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert target.read_text() == (ROOT / "openapi.yaml").read_text(), f"PYTHONHASHSEED={seed}"
