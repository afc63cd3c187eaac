"""The pure fold's own speed: how many events a second the projection cache derives rows for.

    .venv/bin/python -m bench.fold [-n 20000]

No database: the generated history (bench/history.py) is folded event by event through
`projection.Cache.advance`, exactly the work an append does under the log lock besides
its SQL. This is the figure that bounds ingestion and `rebuild` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

import msgspec

from bench.history import History
from service import events as ev
from service import fold
from service.projection import Cache, Changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fold")
    parser.add_argument("-n", type=int, default=20_000, help="events to fold")
    args = parser.parse_args(argv)
    history = History(1, total=args.n)
    now = datetime.now(UTC)
    records: list[fold.Recorded] = []
    for event in history.take(args.n):
        if str(event.get("type", "")).startswith("claim."):
            continue  # they need the ids the server assigns; bench.run covers them
        typed = msgspec.convert(event, ev.Event)
        position = len(records) + 1
        records.append(fold.Recorded(position, uuid.UUID(int=position), now, ev.fact_key(typed), typed))
    cache = Cache()
    cache.state = fold.State()
    changes = Changes()
    started = time.perf_counter()
    for rec in records:
        cache.advance(rec, changes)
    seconds = time.perf_counter() - started
    print(f"{len(records)} events folded in {seconds:.1f} s: {len(records) / seconds:.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
