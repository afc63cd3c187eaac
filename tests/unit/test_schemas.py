"""The JSON Schemas under schemas/ are generated from the Structs and must not drift."""

from __future__ import annotations

import json

from service import events, schemas
from tests.conftest import ROOT


def test_checked_in_schemas_match_the_code() -> None:
    folder = ROOT / "schemas"
    expected = schemas.documents()
    on_disk = {p.name for p in folder.glob("*.json")}
    assert on_disk == set(expected), "run `python -m service.schemas` and commit schemas/"
    for name, body in expected.items():
        assert (folder / name).read_bytes() == body, f"{name} drifted: run `python -m service.schemas`"


def test_every_type_has_a_schema_that_names_it() -> None:
    for name in events.TYPE_NAMES:
        document = json.loads(schemas.documents()[f"{name}.schema.json"])
        definition = next(iter(document["$defs"].values()))
        assert definition["properties"]["type"]["enum"] == [name]
