"""Where an append's time goes: the fold, the projection's writes, and the rest.

    .venv/bin/python -m bench.append [-n 20000] [--batch 1000]

Appends a generated history (bench/history.py, claims left out: they need the ids the
server assigns) through `store.append` with the real Projector, in one process on one
connection, no HTTP, into a fresh database on DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) that it drops afterwards. It prints the
rate and how the time splits between folding (`Cache.advance`), writing the projection
tables (`projection.write`), and everything else (the lock, lookups, the log's insert,
commit): the figure the batch-ingestion miss in bench/README.md is explained with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from bench.history import History
from service import database, fold, projection, store
from service import events as ev


@contextmanager
def timed(spent: dict[str, float], what: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        spent[what] += time.perf_counter() - started


async def run(dsn: str, n: int, batch: int) -> None:
    name = f"hn_bench_append_{os.getpid()}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        conn = await database.connect(urlunsplit(urlsplit(dsn)._replace(path="/" + name)))
        try:
            await database.migrate(conn)
            events = [
                msgspec.convert(e, ev.Event)
                for e in History(1, total=n).take(n)
                if not str(e.get("type", "")).startswith("claim.")
            ]
            spent = {"fold": 0.0, "write": 0.0}
            projector = projection.Projector()
            advance, write = projection.Cache.advance, projection.write

            def timed_advance(
                cache: projection.Cache, rec: fold.Recorded, changes: projection.Changes | None
            ) -> None:
                with timed(spent, "fold"):
                    advance(cache, rec, changes)

            async def timed_write(conn: store.Conn, changes: projection.Changes) -> None:
                with timed(spent, "write"):
                    await write(conn, changes)

            projection.Cache.advance = timed_advance  # type: ignore[method-assign,assignment]
            projection.write = timed_write
            started = time.perf_counter()
            for i in range(0, len(events), batch):
                await store.append(conn, events[i : i + batch], project=projector)
            seconds = time.perf_counter() - started
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.close()
    rest = seconds - spent["fold"] - spent["write"]
    print(
        f"{len(events)} events appended in batches of {batch} in {seconds:.1f} s: "
        f"{len(events) / seconds:.0f} events/s; fold {spent['fold']:.1f} s "
        f"({spent['fold'] / seconds:.0%}), projection writes {spent['write']:.1f} s "
        f"({spent['write'] / seconds:.0%}), the rest (lock, lookups, log insert, commit) "
        f"{rest:.1f} s ({rest / seconds:.0%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.append")
    parser.add_argument("-n", type=int, default=20_000, help="events to append")
    parser.add_argument("--batch", type=int, default=1000, help="events a batch")
    args = parser.parse_args(argv)
    dsn = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    asyncio.run(run(dsn, args.n, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
