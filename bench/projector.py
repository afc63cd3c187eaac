"""The projector's own speed: how fast it folds a log it is behind, with no HTTP.

    .venv/bin/python -m bench.projector [-n 100000] [--batch 1000] [--no-freeze] [--profile FILE]

Appends a generated history (bench/history.py) straight through `store.append` in
batches of 1000 with no projector running, into a fresh database on the PostgreSQL at
DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres), then times the
projector's batches (`service.projection.Projection.step`) until it has caught up, and
splits the time between folding (applying, reach queries, loading, deriving) and
writing (rows, files, checkpoint). It also reports how long the event loop stood still
(a task sleeping 1 ms, and by how much it woke late): in `serve` the API answers on
that loop. `--no-freeze` catches up without the gc.freeze of service.projection, to
see what the cyclic GC costs. `--profile` writes a cProfile of the catching up.
The database is dropped afterwards unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from bench import history as hist
from bench.procs import Databases
from service import database, store
from service import events as ev
from service import projection as proj


async def load(dsn: str, n: int, batch: int = 1000) -> int:
    """Append n generated events, claims bound to the ids the store assigned."""
    history = hist.History(1, total=n)
    ids: dict[int, str] = {}
    conn = await database.connect(dsn)
    try:
        await database.migrate(conn)
        done = 0
        while done < n:
            first = history.index
            raw = hist.bind(history.take(min(batch, n - done)), ids)
            events: list[ev.Event] = [msgspec.convert(e, ev.Event) for e in raw]
            appended = await store.append(conn, events)
            for i, answer in enumerate(appended):
                if first + i in history.targets:
                    ids[first + i] = str(answer.event_id)
            done += len(events)
        return done
    finally:
        await conn.close()


class Timed:
    """Seconds spent in the batches' two halves, measured by wrapping them."""

    def __init__(self) -> None:
        self.fold = 0.0
        self.write = 0.0

    def wrap(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                setattr(self, name, getattr(self, name) + time.perf_counter() - started)

        return timed


async def pauses(lags: list[float], stop: asyncio.Event) -> None:
    """How late a 1 ms sleep wakes, again and again: the loop's pauses, in seconds."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - started - 0.001)


async def catch_up(dsn: str, batch: int, profile: str | None) -> dict[str, Any]:
    conn = await database.connect(dsn)
    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(pauses(lags, stop))
    timed = Timed()
    run, write = proj.Batch.run, proj.Batch.write
    proj.Batch.run = timed.wrap("fold", run)  # type: ignore[method-assign, assignment]
    proj.Batch.write = timed.wrap("write", write)  # type: ignore[method-assign, assignment]
    profiler = cProfile.Profile() if profile else None
    projection = proj.Projection(batch=batch)
    totals = {"events": 0, "batches": 0, "derived": 0, "loaded": 0, "queries": 0}
    try:
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        while True:
            stats = await projection.step(conn)
            if not stats.events:
                break
            totals["events"] += stats.events
            totals["batches"] += 1
            totals["derived"] += stats.derived
            totals["loaded"] += stats.loaded
            totals["queries"] += stats.queries
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)  # type: ignore[arg-type]
    finally:
        proj.Batch.run, proj.Batch.write = run, write  # type: ignore[method-assign]
        stop.set()
        await ticker
        await conn.close()
    lags.sort()
    return {
        **totals,
        "seconds": seconds,
        "fold": timed.fold,
        "write": timed.write,
        "pause_p99": lags[int(0.99 * len(lags))] if lags else 0.0,
        "pause_max": lags[-1] if lags else 0.0,
    }


async def main_async(args: argparse.Namespace) -> int:
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    databases = Databases(admin, f"{os.getpid()}_proj")
    try:
        dsn = await databases.create("log")
        started = time.perf_counter()
        n = await load(dsn, args.n)
        print(f"appended {n} events in {time.perf_counter() - started:.1f} s (no projector)", file=sys.stderr)
        if args.no_freeze:
            proj.UNFREEZE_BATCHES = 0  # type: ignore[misc]  # every batch thaws: never frozen
        result = await catch_up(dsn, args.batch, args.profile)
        rest = result["seconds"] - result["fold"] - result["write"]
        print(
            f"projected {result['events']} events in {result['seconds']:.1f} s: "
            f"{result['events'] / result['seconds']:.0f} events/s "
            f"({result['batches']} batches of up to {args.batch}; folding {result['fold']:.1f} s, "
            f"writing {result['write']:.1f} s, the rest {rest:.1f} s; "
            f"{result['derived']} ids derived, {result['loaded']} loaded, {result['queries']} reach queries); "
            f"the event loop's pauses: p99 {result['pause_p99'] * 1000:.0f} ms, "
            f"longest {result['pause_max'] * 1000:.0f} ms{' (no gc.freeze)' if args.no_freeze else ''}"
        )
    finally:
        if not args.keep:
            await databases.drop_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projector")
    parser.add_argument("-n", type=int, default=100_000, help="events to append, then project")
    parser.add_argument("--batch", type=int, default=proj.BATCH_EVENTS, help="events per projector batch")
    parser.add_argument("--no-freeze", action="store_true", help="leave the cyclic GC as Python sets it")
    parser.add_argument("--profile", help="write a cProfile of the catching up to this file")
    parser.add_argument("--keep", action="store_true", help="leave the database (drop it yourself)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
