"""Flows between two subtrees, against the rule written the slow way.

`answers.flows` tests only the moves and days the two subtrees can involve. Here the
same answer is made by testing every move on every day any org version begins or ends,
over random org histories (orgs moved between parents, dissolved, re-parented under
each other) and random moves between them, so a move the shortcut drops would show.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import msgspec
import pytest

from service.answers import Move, PartialDate, flows, move_day, subtree
from service.fold import MoveRow, OrgRow

DAY0 = date(2020, 1, 1)
ORGS = [f"o{i}" for i in range(12)]


def history(rng: random.Random) -> tuple[list[OrgRow], list[MoveRow]]:
    rows: list[OrgRow] = []
    for org in ORGS:
        start = DAY0 + timedelta(days=rng.randrange(0, 200))
        for _ in range(rng.randrange(1, 4)):
            until = start + timedelta(days=rng.randrange(20, 300)) if rng.random() < 0.7 else None
            parent = rng.choice([None, *ORGS])
            rows.append(OrgRow(org, org.upper(), "team", parent, start, until, False))
            if until is None:
                break
            start = until
    moves = []
    for n in range(60):
        earliest = DAY0 + timedelta(days=rng.randrange(0, 900)) if rng.random() < 0.9 else None
        latest = (
            None
            if earliest is None or rng.random() < 0.2
            else earliest + timedelta(days=rng.randrange(0, 60))
        )
        a, b = rng.sample(ORGS, 2)
        moves.append(MoveRow(f"p{n}", a, b, None, earliest, latest, msgspec.Raw(b"[]")))
    return rows, moves


def every_day(from_id: str, to_id: str, moves: list[MoveRow], rows: list[OrgRow]) -> list[Move]:
    """Each move tested on every day any version of any org begins or ends."""
    days = sorted({d for r in rows for d in (r.valid_from, r.valid_until) if d is not None})
    found = []
    for row in moves:
        first, last = row.on_earliest or date.min, row.on_latest or date.max
        if any(
            row.from_org_id in {from_id, *subtree(from_id, d, rows)}
            and row.to_org_id in {to_id, *subtree(to_id, d, rows)}
            for d in [first, *(d for d in days if first < d <= last)]
        ):
            on = PartialDate(value=row.on_value, earliest=row.on_earliest, latest=row.on_latest)
            found.append(
                (
                    move_day(row) or date.min,
                    Move(
                        person_id=row.person_id, from_org_id=row.from_org_id, to_org_id=row.to_org_id, on=on
                    ),
                )
            )
    found.sort(key=lambda m: (m[0], m[1].person_id, m[1].from_org_id, m[1].to_org_id))
    return [m for _, m in found]


@pytest.mark.parametrize("seed", range(40))
def test_flows_equal_the_rule_tested_on_every_day(seed: int) -> None:
    rng = random.Random(seed)
    rows, moves = history(rng)
    for from_id, to_id in [rng.sample(ORGS, 2) for _ in range(6)]:
        got = flows(from_id, to_id, None, None, moves, rows, as_of=1)
        assert got.moves == every_day(from_id, to_id, moves, rows), (seed, from_id, to_id)
