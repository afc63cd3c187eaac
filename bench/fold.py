"""The pure fold's own speed: how many events a second it applies and derives rows for.

    .venv/bin/python -m bench.fold [-n 20000]

No database: the generated history (bench/history.py) is applied event by event to a
whole State held in memory, and after each event the rows of the people and orgs it
names are derived again, the work the projector does per event besides its SQL and its
loading (`bench.projector` measures the projector itself).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import msgspec

from bench.history import History
from service import events as ev
from service.fold import Recorded, State


def records(n: int) -> list[Recorded]:
    out: list[Recorded] = []
    for event in History(1, total=n).take(n):
        if str(event.get("type", "")).startswith("claim."):
            continue  # they need the ids the server assigns; bench.run covers them
        typed: ev.Event = msgspec.convert(event, ev.Event)
        position = len(out) + 1
        out.append(Recorded(position, uuid.UUID(int=position), ev.fact_key(typed), typed))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fold")
    parser.add_argument("-n", type=int, default=20_000, help="events to fold")
    args = parser.parse_args(argv)
    log = records(args.n)
    state = State()
    started = time.perf_counter()
    for rec in log:
        state.apply(rec)
        for ref in ev.referenced_people(rec.event):
            state.membership_rows(ref.id)
            state.move_rows(ref.id)
        for ref in ev.referenced_orgs(rec.event):
            state.org_rows(ref.id)
    seconds = time.perf_counter() - started
    print(f"{len(log)} events folded in {seconds:.1f} s: {len(log) / seconds:.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
