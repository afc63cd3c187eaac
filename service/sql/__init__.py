"""Named SQL blocks, loaded once from the `.sql` files beside this module.

A block starts with a line `-- name --` and runs to the next such line, the way
procrastinate keeps its queries: the SQL stays SQL, readable and greppable, and the
Python names it by key. A name given twice, in one file or two, is refused, as is a
file in migrations/ whose name is not NNNN_name.sql: either would be silently dropped.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

_HEADER: Final = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)
_MIGRATION: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
FILES: Final = ("queries.sql", "projector.sql", "reads.sql", "rebuild.sql")


def load(filename: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    blocks: dict[str, str] = {}
    # split() yields [preamble, name1, body1, name2, body2, ...].
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"{filename}: the block {name!r} is defined twice")
        blocks[name] = body.strip()
    return blocks


def load_all(filenames: tuple[str, ...] = FILES) -> dict[str, str]:
    merged: dict[str, str] = {}
    for filename in filenames:
        blocks = load(filename)
        for name in blocks.keys() & merged.keys():
            raise ValueError(f"{filename}: the block {name!r} is also defined in another file")
        merged |= blocks
    return merged


def migrations() -> list[tuple[int, str, str]]:
    """Every numbered migration as (number, name, sql), in order."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION.match(entry.name)
        if match is None:
            raise ValueError(f"migrations/{entry.name}: a migration is named NNNN_name.sql")
        found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    numbers = [number for number, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise ValueError("two migrations share a number")
    return sorted(found)


def migration(name: str) -> str:
    """The text of the migration called `name` (NNNN_name.sql): where a lock's key or a
    function is defined once, for whoever needs to name it too."""
    for _, found, text in migrations():
        if found == name:
            return text
    raise KeyError(f"no migration is called {name!r}")


QUERIES: Final = load_all()
