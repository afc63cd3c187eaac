"""Named SQL blocks, loaded once from the `.sql` files beside this module.

A block starts with a line `-- name --` and runs to the next such line, the way
procrastinate keeps its queries: the SQL stays SQL, readable and greppable, and the
Python names it by key.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

_HEADER: Final = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def load(filename: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    # split() yields [preamble, name1, body1, name2, body2, ...].
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def migrations() -> list[tuple[int, str, str]]:
    """Every numbered migration as (number, name, sql), in order."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


QUERIES: Final = load("queries.sql") | load("projection.sql") | load("reads.sql")
