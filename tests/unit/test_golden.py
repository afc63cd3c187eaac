"""Stored payloads of every past schema version stay readable, through the upcasters.

tests/golden/v<N>/ holds, per event type, a row exactly as the log stored it at that
version. When a type's `data` changes shape, add the upcaster, keep these files as they
are, and add the new version's files beside them: old rows are never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import events as ev

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FILES = sorted(GOLDEN.glob("v*/*.json"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_payloads_decode_to_current_events(path: Path) -> None:
    row = json.loads(path.read_text())
    event = ev.from_stored(
        row["type"], row["schema_version"], row["data"], row["status"], row["source"], row["idempotency_key"]
    )
    assert ev.type_name(event) == row["type"]


def test_every_type_and_version_has_a_golden_payload() -> None:
    have = {(p.parent.name, p.stem) for p in FILES}
    for name, current in ev.SCHEMA_VERSION.items():
        for version in range(1, current + 1):
            assert (f"v{version}", name) in have, f"add tests/golden/v{version}/{name}.json"
