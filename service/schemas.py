"""JSON Schema of the envelope and of every event type, generated from the Structs.

`python -m service.schemas` writes them to schemas/; a test fails when the checked-in
files drift from the code. Descriptions go through `prose()`, here and in openapi.yaml,
so that how a docstring is indented or wrapped (and how a msgspec release reports it)
does not change the documents.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from service import events

# Lines whose breaks mean something in Markdown: list items, fences, quotes, indented code.
_MARKUP: Final = re.compile(r"^(?:[-*+] |\d+[.)] |```|>|[ \t])", re.MULTILINE)
# Values that are data, not documentation: left exactly as they are.
_DATA: Final = frozenset({"const", "default", "enum", "example", "examples"})


def prose(text: str) -> str:
    """A description as its words, whatever the layout of the docstring it came from.

    Paragraphs (split at blank lines) stay; within one, line breaks and indentation are
    the source's wrapping, and become single spaces, as Markdown reads them anyway. A
    paragraph with markup that needs its lines (a list, a fence, a quote, indented code)
    keeps them, dedented.
    """
    paragraphs = re.split(r"\n[ \t]*\n", inspect.cleandoc(text))
    return "\n\n".join(
        "\n".join(line.rstrip() for line in p.splitlines()) if _MARKUP.search(p) else " ".join(p.split())
        for p in paragraphs
        if p.strip()
    )


def tidy(node: Any) -> Any:
    """`node` (a JSON Schema or OpenAPI document, as plain data) with every description
    and summary in `prose()`."""
    if isinstance(node, dict):
        return {
            key: prose(value)
            if key in ("description", "summary") and isinstance(value, str)
            else value
            if key in _DATA
            else tidy(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [tidy(value) for value in node]
    return node


def documents() -> dict[str, bytes]:
    """File name -> pretty JSON Schema document."""
    out: dict[str, bytes] = {}
    out["event.schema.json"] = _pretty(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "hiring-news event (one, or an array of at most 1000)",
            **msgspec.json.schema(events.Event | list[events.Event]),
        }
    )
    for name, struct in zip(events.TYPE_NAMES, events.EVENT_TYPES, strict=True):
        out[f"{name}.schema.json"] = _pretty(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": name,
                **msgspec.json.schema(struct),
            }
        )
    return out


def _pretty(document: object) -> bytes:
    return msgspec.json.format(msgspec.json.encode(tidy(document)), indent=2) + b"\n"


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in documents().items():
        path = folder / name
        path.write_bytes(body)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schemas")
    for path in write(target):
        print(path)
