"""JSON Schema of the envelope and of every event type, generated from the Structs.

`python -m service.schemas` writes them to schemas/; a test fails when the checked-in
files drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from service import events


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
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


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
