"""Standby lag and reads from the standby: `python -m bench.standby [--seconds N]`.

Makes a private primary (initdb) and a hot standby of it (`pg_basebackup -R`, streaming
through a slot) with the machine's PostgreSQL binaries, each on a free port (never the
shared server; tests/pgcluster.py), and real processes on them: `hiring-news project`
(the projector alone), a `serve --no-projector` the writers post to, and two read
servers alike but for where they read (`serve --no-projector` each, so that neither
folds or appends while it answers):

- through the standby: DATABASE_URL on the primary, DATABASE_READ_URL on the standby;
- the primary alone: DATABASE_URL on the primary.

Then, bounded in time:

1. a write load: `--writers` clients (8) each posting batches of `--batch` events of a
   generated history of its own (bench/history.py) for `--seconds`, while the standby's
   lag is sampled once a second: replay lag in WAL bytes and in time (pg_stat_replication
   on the primary), and in log positions (the primary's last position minus the
   standby's, and minus the standby's projection: what a read from the standby sees).
   Meanwhile one client per server reads rosters without `as_of` back to back: what
   read-your-writes costs through the standby under that lag;
2. the standby's catch-up after the last write;
3. roster throughput at a fixed position, through the standby and from the primary
   alone, side by side (alternating rounds); and a third server with DATABASE_READ_URL
   on the primary itself, which reads as the first does (the position from one pool, the
   rows from another) from one server: what the two steps cost, apart from the standby.

Prints tables (and writes bench/results/standby.json); writes nothing into README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import history as hist
from bench import load
from bench.procs import (
    Processes,
    Server,
    free_port,
    project_argv,
    serve_argv,
    service_env,
    sigterm_as_interrupt,
    wait_ready,
)
from bench.run import RESULTS, Queries, queries
from tests import pgcluster

# DATABASE_READ_URL on the primary itself: the standby's two steps without the standby.
TWO_STEP = "primary, read as through a standby"
# Wide enough for the tables when the output goes to a file.
console = Console(width=None if sys.stdout.isatty() else 120)

# A sample's queries. On the primary: its log's last position, its projection's, and
# its one standby's replay lag in bytes of WAL and in time (NULL once caught up and idle).
PRIMARY = """
SELECT (SELECT coalesce(max(position), 0) FROM events) AS head,
       (SELECT position FROM projection_checkpoint) AS projected,
       (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication) AS wal_bytes,
       (SELECT extract(epoch FROM replay_lag) FROM pg_stat_replication) AS replay_seconds
"""
STANDBY = """
SELECT (SELECT coalesce(max(position), 0) FROM events) AS head,
       (SELECT position FROM projection_checkpoint) AS projected
"""


@dataclass
class Sample:
    at: float
    wal_bytes: float
    replay_seconds: float
    log_events: int  # primary's head - standby's head
    read_events: int  # primary's head - standby's projection: what a standby read misses
    primary_projection_events: int  # primary's head - primary's projection (the projector's own lag)


async def sample(primary: asyncpg.Connection, standby: asyncpg.Connection, started: float) -> Sample:
    # The primary first: the standby, read just after, can only look closer than it was.
    p = await primary.fetchrow(PRIMARY)
    s = await standby.fetchrow(STANDBY)
    assert p is not None and s is not None
    return Sample(
        round(time.perf_counter() - started, 2),
        float(p["wal_bytes"] or 0),
        float(p["replay_seconds"] or 0),
        max(0, p["head"] - s["head"]),
        max(0, p["head"] - s["projected"]),
        max(0, p["head"] - p["projected"]),
    )


def seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p99": at(0.99), "max": ordered[-1]}


@dataclass
class Fresh:
    """Rosters read without `as_of` back to back: each asks for the head when it arrives."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    lagging: int = 0  # answers flagged with Projection-Lag

    def summary(self) -> dict[str, Any]:
        ms = percentiles([x * 1000 for x in self.latencies])
        return {"reads": len(self.latencies), "statuses": self.statuses, "lagging": self.lagging, **ms}


async def fresh_reads(base: str, paths: list[str], stop: asyncio.Event, found: Fresh) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        n = 0
        while not stop.is_set():
            started = time.perf_counter()
            answer = await client.get(paths[n % len(paths)])
            found.latencies.append(time.perf_counter() - started)
            found.statuses[answer.status_code] = found.statuses.get(answer.status_code, 0) + 1
            found.lagging += "projection-lag" in answer.headers
            n += 1


async def head_of(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))


async def caught_up(conn: asyncpg.Connection, head: int, started: float, bound: float) -> float | None:
    """Seconds from `started` until the projection on `conn` reaches `head`, or None past `bound`."""
    while int(await conn.fetchval("SELECT position FROM projection_checkpoint")) < head:
        if time.perf_counter() - started > bound:
            return None
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def side_by_side(
    servers: dict[str, Server], q: Queries, *, connections: int, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """Each server's roster throughput, rounds alternating in order (ABBA) so that the
    machine's drift hits both alike."""
    paths = q.write("standby_rosters")
    for server in servers.values():  # warm both: connections, caches, plans
        await load.get_paths(server.base, paths, connections=connections, seconds=1)
    got: dict[str, list[load.LoadResult]] = {name: [] for name in servers}
    names = list(servers)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            got[name].append(
                await load.get_paths(
                    servers[name].base, paths, connections=connections, seconds=seconds / rounds
                )
            )
    out = {}
    for name, results in got.items():
        total = sum(r.seconds for r in results)
        out[name] = {
            "rps": sum(r.requests - r.errors for r in results) / total if total else 0.0,
            "p50_ms": statistics.mean(r.p50_ms for r in results),
            "p99_ms": statistics.mean(r.p99_ms for r in results),
            "errors": sum(r.errors for r in results),
            "tool": results[0].tool,
        }
    return out


async def start(procs: Processes, name: str, env: dict[str, str], *, projector: bool) -> Server:
    port = free_port()
    server = procs.start(name, serve_argv(port, projector=projector), env, port)
    await wait_ready(server, "/readyz")
    return server


async def measure(
    args: argparse.Namespace, primary: pgcluster.Cluster, standby: pgcluster.Cluster
) -> dict[str, Any]:
    procs = Processes(RESULTS / "logs" / "standby")
    through_env = service_env(primary.dsn)
    through_env["DATABASE_READ_URL"] = standby.dsn
    results: dict[str, Any] = {}
    p_conn = await asyncpg.connect(primary.dsn)
    s_conn: asyncpg.Connection | None = None
    posters: list[load.Poster] = []
    try:
        writes = await start(procs, "writes", service_env(primary.dsn), projector=False)
        procs.start("projector", project_argv(), service_env(primary.dsn), 0)
        through = await start(procs, "through-standby", through_env, projector=False)
        alone = await start(procs, "primary-alone", service_env(primary.dsn), projector=False)
        s_conn = await asyncpg.connect(standby.dsn)
        histories = [hist.History(100 + i, prefix=f"w{i}-") for i in range(args.writers)]
        posters = [load.Poster(writes.base, h, batch=args.batch) for h in histories]
        # A first part of each history, so that reads have teams to ask for.
        for poster in posters:
            warm = await poster.run(events=1000)
            flushed = await poster.flush()
            if warm.failed or flushed.failed:
                raise RuntimeError(warm.failed or flushed.failed)
        start_head = await head_of(p_conn)
        await caught_up(s_conn, start_head, time.perf_counter(), 120)
        q = queries(histories[0], start_head, most=50)
        teams = q.orgs or histories[0].teams_with_members(1)
        fresh_paths = [f"/orgs/{org}/roster?on={q.on.isoformat()}" for org in teams]

        samples: list[Sample] = []
        fresh = {"through the standby": Fresh(), "primary alone": Fresh()}
        stop = asyncio.Event()
        started = time.perf_counter()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"{args.writers} writers, batches of {args.batch}", total=args.seconds)

            async def sampling() -> None:
                while not stop.is_set():
                    assert s_conn is not None
                    samples.append(await sample(p_conn, s_conn, started))
                    progress.update(
                        task,
                        completed=min(args.seconds, time.perf_counter() - started),
                        description=f"{args.writers} writers, batches of {args.batch}: "
                        f"standby {samples[-1].log_events} events behind",
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)

            readers = [
                asyncio.create_task(
                    fresh_reads(through.base, fresh_paths, stop, fresh["through the standby"])
                ),
                asyncio.create_task(fresh_reads(alone.base, fresh_paths, stop, fresh["primary alone"])),
            ]
            sampler = asyncio.create_task(sampling())
            loaded = await asyncio.gather(*(p.run(seconds=args.seconds) for p in posters))
            stop.set()
            await asyncio.gather(sampler, *readers)
        failed = [r.failed for r in loaded if r.failed]
        if failed:
            raise RuntimeError(failed[0])
        load_seconds = time.perf_counter() - started
        events = sum(r.events for r in loaded)
        for poster in posters:  # what was generated ahead: the queries' teams are in the log
            await poster.flush()
        head = await head_of(p_conn)
        # The projector catches up on the primary; the standby replays it a moment later.
        last_write = time.perf_counter()
        primary_caught_up = await caught_up(p_conn, head, last_write, 300)
        standby_caught_up = await caught_up(s_conn, head, last_write, 300)
        results["load"] = {
            "writers": args.writers,
            "batch": args.batch,
            "seconds": round(load_seconds, 1),
            "events": events,
            "events_per_second": round(events / load_seconds, 1),
            "head": head,
            "primary_projection_caught_up_seconds": seconds(primary_caught_up),
            "standby_projection_caught_up_seconds": seconds(standby_caught_up),
        }
        results["lag"] = {
            "samples": len(samples),
            "wal_bytes": percentiles([s.wal_bytes for s in samples]),
            "replay_seconds": percentiles([s.replay_seconds for s in samples]),
            "log_events": percentiles([float(s.log_events) for s in samples]),
            "read_events": percentiles([float(s.read_events) for s in samples]),
            "primary_projection_events": percentiles([float(s.primary_projection_events) for s in samples]),
            "series": [asdict(s) for s in samples],
        }
        results["fresh_reads"] = {name: f.summary() for name, f in fresh.items()}
        two_step_env = service_env(primary.dsn)
        two_step_env["DATABASE_READ_URL"] = primary.dsn
        two_step = await start(procs, "two-step-on-primary", two_step_env, projector=False)
        with console.status("rosters: through the standby and from the primary alone, side by side"):
            results["rosters"] = await side_by_side(
                {"through the standby": through, "primary alone": alone, TWO_STEP: two_step},
                queries(histories[0], head),
                connections=args.connections,
                seconds=args.read_seconds,
                rounds=2,
            )
        results["rosters"]["connections"] = args.connections
        results["rosters"]["as_of"] = head
    finally:
        for poster in posters:
            await poster.close()
        await p_conn.close()
        if s_conn is not None:
            await s_conn.close()
        procs.stop_all()
    return results


def report(results: dict[str, Any]) -> None:
    ld = results["load"]
    console.print(
        f"[bold]Standby lag[/] {results['date']}: {ld['writers']} writers, batches of {ld['batch']}, "
        f"{ld['seconds']} s: {ld['events']} events ({ld['events_per_second']:.0f}/s); "
        f"after the last write, the projection reached the head in {ld['primary_projection_caught_up_seconds']} s "
        f"on the primary, {ld['standby_projection_caught_up_seconds']} s on the standby"
    )
    lag = Table("lag, sampled once a second", "p50", "p99", "max")
    rows = [
        ("replay, WAL bytes", "wal_bytes", "{:,.0f}"),
        ("replay_lag, s", "replay_seconds", "{:.3f}"),
        ("log positions (events)", "log_events", "{:.0f}"),
        ("standby's projection, events (what its reads miss)", "read_events", "{:.0f}"),
        ("primary's projection, events (the projector's own lag)", "primary_projection_events", "{:.0f}"),
    ]
    for label, key, fmt in rows:
        values = results["lag"][key]
        lag.add_row(label, *(fmt.format(values[p]) for p in ("p50", "p99", "max")))
    console.print(lag)
    fresh = Table(
        "rosters without as_of, during the load",
        "reads",
        "p50 ms",
        "p99 ms",
        "max ms",
        "flagged lagging",
        "statuses",
    )
    for name, f in results["fresh_reads"].items():
        fresh.add_row(
            name,
            str(f["reads"]),
            f"{f['p50']:.1f}",
            f"{f['p99']:.1f}",
            f"{f['max']:.1f}",
            str(f["lagging"]),
            json.dumps(f["statuses"]),
        )
    console.print(fresh)
    rosters = results["rosters"]
    table = Table(
        f"rosters at as_of={rosters['as_of']}, {rosters['connections']} connections",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
    )
    for name in ("through the standby", "primary alone", TWO_STEP):
        r = rosters[name]
        table.add_row(name, f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", str(r["errors"]))
    console.print(table)


async def run(args: argparse.Namespace) -> int:
    reason = pgcluster.unavailable()
    if reason is not None:
        console.print(f"no private PostgreSQL cluster: {reason}")
        return 2
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command,
    }
    with contextlib.ExitStack() as clusters:
        with console.status("a private primary and a streaming standby"):
            primary = clusters.enter_context(pgcluster.private_cluster())
            standby = clusters.enter_context(pgcluster.private_standby(primary))
        results["postgres"] = primary.psql("SHOW server_version")
        results.update(await measure(args, primary, standby))
    report(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "standby.json").write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {RESULTS / 'standby.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.standby", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the write load (default 30)")
    parser.add_argument("--writers", type=int, default=8, help="clients posting batches (default 8)")
    parser.add_argument("--batch", type=int, default=100, help="events a batch (default 100)")
    parser.add_argument(
        "--read-seconds", type=float, default=10.0, help="roster throughput, seconds per side (default 10)"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="roster throughput connections (default 32)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.command = " ".join(["python -m bench.standby", *(sys.argv[1:] if argv is None else argv)])
    try:
        with sigterm_as_interrupt():
            return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
