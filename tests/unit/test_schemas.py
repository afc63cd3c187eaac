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
    # Before 3.13 a docstring keeps the indentation of its continuation lines, and msgspec
    # before 0.23 reports it as it is: all read the same, and so does the text wrapped
    # at another width.
    clean = inspect.cleandoc(FieldError.__doc__ or "")
    indented = clean.replace("\n", "\n    ")
    rewrapped = "\n".join(textwrap.wrap(" ".join(clean.split()), width=40, initial_indent="  "))
    expected = " ".join(clean.split())
    assert "\n" in clean and expected.startswith("What is wrong at one place")
    assert schemas.prose(clean) == schemas.prose(indented) == schemas.prose(rewrapped) == expected
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
