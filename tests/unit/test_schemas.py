"""The JSON Schemas under schemas/ are generated from the Structs and must not drift."""

from __future__ import annotations

import inspect
import json
import textwrap

import msgspec

from service import events, schemas
from service.problems import FieldError
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


def test_a_description_does_not_depend_on_how_its_docstring_is_laid_out() -> None:
    # msgspec 0.23 cleans a docstring's indentation, earlier releases kept it: both read
    # the same, and so does the same text wrapped at another width.
    raw = FieldError.__doc__
    assert raw is not None and "\n    parameter" in raw
    rewrapped = "\n".join(textwrap.wrap(" ".join(raw.split()), width=40, initial_indent="  "))
    expected = " ".join(raw.split())
    assert schemas.prose(raw) == schemas.prose(inspect.cleandoc(raw)) == schemas.prose(rewrapped) == expected
    described = msgspec.json.schema(FieldError)["$defs"]["FieldError"]["description"]
    assert schemas.prose(described) == expected


def test_prose_keeps_paragraphs_and_the_lines_of_markup() -> None:
    text = """First paragraph,
        wrapped.

        A list:
        - one
        - two
    """
    assert schemas.prose(text) == "First paragraph, wrapped.\n\nA list:\n- one\n- two"


def test_tidy_rewrites_descriptions_and_leaves_data_alone() -> None:
    document = {
        "description": "two\n   lines",
        "properties": {"description": {"type": "string", "description": "a\n b"}},
        "examples": [{"description": "kept\n  as is"}],
        "enum": ["x\n y"],
    }
    assert schemas.tidy(document) == {
        "description": "two lines",
        "properties": {"description": {"type": "string", "description": "a b"}},
        "examples": [{"description": "kept\n  as is"}],
        "enum": ["x\n y"],
    }
