"""Three API processes on one database against one: does appending scale out?

    .venv/bin/python -m bench.processes [--seconds 20] [--rounds 2] [--writers 30] [--profile DIR]

Two deployments, each on a fresh database of the PostgreSQL at DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres): one `hiring-news serve` process, and
three. Every process runs the service's defaults, projector included, so both
deployments project what they take: the single process with its own projector, the three
with the one their election chose (the other two stand by). The same writers load each
in turn, in rounds in ABBA order (one, three, three, one, ...) so that the machine's
drift hits both alike: `--writers` concurrent writers (30), each on keep-alive
connections of its own (bench.load.KeepAlive: raw asyncio streams, a tenth of httpx's
CPU, which the servers on the same cores get), posting 40 % single events and 60 %
batches of 1 to 20 (`member.joined`, ids introduced by name, every event with a new
idempotency key), spreading their requests
over the deployment's processes in turn, retrying a request with the same body on
another process after a connection error or a 5xx. Between rounds the projector is let
catch up, so no round pays for the last one's backlog.

Reported per deployment: events and requests acknowledged per second, latency, and the
CPU the serve processes, their database's backends, this load generator and the whole
machine used (psutil), in cores; then the ratio three/one (goal 1.2). The figures go to
bench/results/processes.json. With `--profile DIR`, py-spy (the bench extra) records every
serve process through the last round (raw stacks, DIR/<deployment>-<i>.txt),
and the share of samples by the file the process was executing is printed. Everything
started is stopped and the databases dropped, on Ctrl-C or SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import psutil

from bench import load
from bench.procs import (
    BOOTSTRAP_KEY,
    Databases,
    Processes,
    Server,
    free_port,
    project_argv,
    serve_argv,
    service_env,
    sigterm_as_interrupt,
    wait_ready,
)
from service import sql

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GOAL = 1.2
WRITERS = 30
SINGLE_SHARE = 0.4  # of requests: one event; the rest are batches of 1 to MAX_BATCH
MAX_BATCH = 20
RETRIES = 5
CATCH_UP_SECONDS = 120.0


@dataclass
class Tally:
    """What one deployment's writers got in one round."""

    events: int = 0
    requests: int = 0
    errors: int = 0  # requests given up: a 4xx, or still failing after RETRIES
    retries: int = 0  # attempts repeated after a connection error or a 5xx
    why: Counter[str] = field(default_factory=Counter)  # the error or status of each retry and error
    groups: int = 0  # transactions that appended (group commits: one recorded_at each)
    activity: Counter[str] = field(default_factory=Counter)  # the database's backends, summed over samples
    samples: int = 0
    by_process: list[list[float]] = field(default_factory=list)  # latencies, by the process that answered
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def counts(self) -> dict[str, Any]:
        """Everything but the latencies, as JSON takes it."""
        return {
            f.name: dict(value) if isinstance(value := getattr(self, f.name), Counter) else value
            for f in fields(self)
            if f.name not in ("latencies", "by_process")
        }


def percentile(latencies: list[float], q: float) -> float:
    """In milliseconds."""
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Cpu:
    """CPU seconds used in a round, by whom."""

    serve: float = 0.0
    postgres: float | None = None  # the deployment's database backends; None if not visible here
    writers: float = 0.0
    machine: float = 0.0  # every core's busy time


@dataclass
class Deployment:
    name: str
    dsn: str
    servers: list[Server]  # the API processes, each a `serve`
    projector: Server | None = None  # `hiring-news project`, when the API processes do not project

    @property
    def bases(self) -> list[str]:
        return [s.base for s in self.servers]

    @property
    def processes(self) -> list[Server]:
        return [*self.servers, *([self.projector] if self.projector else [])]


# ---- the writers --------------------------------------------------------------------------------


def bodies(writer: int, writers: int, tag: str, rng: random.Random) -> Iterator[tuple[bytes, int]]:
    """A writer's requests: (body, events), each event with a key of its own. The writers
    take turns through the people (post_event_body: person n mod 20,000), so that a
    person's career grows at the pace of the whole load, not 30 times faster."""
    k = 0
    while True:
        single = rng.random() < SINGLE_SHARE
        size = 1 if single else rng.randint(1, MAX_BATCH)
        events = []
        for _ in range(size):
            k += 1
            events.append(load.post_event_body(k * writers + writer, tag))
        yield (events[0] if single else b"[" + b",".join(events) + b"]"), size


async def write(
    writer: int,
    writers: int,
    bases: list[str],
    tag: str,
    deadline: float,
    tally: Tally,
    client: load.KeepAlive,
) -> None:
    """Post until the deadline, each request to the next process, retried on the next."""
    rng = random.Random(writer)
    turn = writer
    for body, size in bodies(writer, writers, tag, rng):
        if time.perf_counter() >= deadline:
            return
        started = time.perf_counter()
        for attempt in range(RETRIES + 1):
            base = bases[turn % len(bases)]
            turn += 1
            try:
                status = await client.post(base, "/events", body)
            except ConnectionError as error:
                status, why = 0, str(error).partition(":")[0]
            else:
                why = str(status)
            if status in (200, 201):
                tally.latencies.append(time.perf_counter() - started)
                tally.by_process[(turn - 1) % len(bases)].append(tally.latencies[-1])
                tally.events += size
                tally.requests += 1
                break
            tally.why[why] += 1
            if (status == 0 or status >= 500) and attempt < RETRIES:
                tally.retries += 1
                await asyncio.sleep(0.05)
                continue
            tally.errors += 1
            break


async def round_of(deployment: Deployment, writers: int, seconds: float, tag: str) -> tuple[Tally, Cpu]:
    tally = Tally(by_process=[[] for _ in deployment.bases])
    headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}", "Content-Type": "application/json"}
    clients = [load.KeepAlive(headers) for _ in range(writers)]
    stop = asyncio.Event()
    try:
        head, _ = await head_and_checkpoint(deployment.dsn)
        before = await cpu_now(deployment)
        watching = asyncio.create_task(watch(deployment.dsn, tally, stop))
        started = time.perf_counter()
        deadline = started + seconds
        # Bounded even if a server stops answering: the last requests get 60 s at most.
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    write(w, writers, deployment.bases, f"{tag}w{w}", deadline, tally, c)
                    for w, c in enumerate(clients)
                )
            ),
            seconds + 60,
        )
        tally.seconds = time.perf_counter() - started
        after = await cpu_now(deployment)
        stop.set()
        await watching
        tally.groups = await groups_after(deployment.dsn, head)
    finally:
        stop.set()
        for client in clients:
            await client.aclose()
    used = Cpu(
        serve=after.serve - before.serve,
        postgres=None
        if after.postgres is None or before.postgres is None
        else after.postgres - before.postgres,
        writers=after.writers - before.writers,
        machine=after.machine - before.machine,
    )
    return tally, used


# ---- the database --------------------------------------------------------------------------------

# What each backend of the deployment's database is doing, by kind. Waiting for a lock is,
# under this load, waiting for the log's (an append's advisory lock: the projector's
# locks are not contended); in a transaction and idle, it waits for its client's next
# statement: a round trip, or a process that is not scheduled.
_ACTIVITY = """
SELECT CASE
         WHEN wait_event_type = 'Lock' THEN 'waiting for a lock (' || wait_event || ')'
         WHEN state = 'idle in transaction' THEN 'in a transaction, waiting for its client'
         WHEN state = 'active' AND wait_event_type IS NULL THEN 'running'
         WHEN state = 'active' THEN 'active, waiting on ' || wait_event_type
       END AS what,
       count(*) AS n
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND state <> 'idle'
GROUP BY 1
UNION ALL
SELECT 'holding the log lock', count(*)
FROM pg_locks
WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
# The log's lock, read from the very query that takes it (a one-int advisory key shows in
# pg_locks as its high and low halves).
_LOG_LOCK: Final = int(re.findall(r"pg_advisory_xact_lock\((\d+)\)", sql.migration("append_group"))[0])


async def watch(dsn: str, tally: Tally, stop: asyncio.Event, every: float = 0.1) -> None:
    """Sample pg_stat_activity until stopped."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            for row in await conn.fetch(_ACTIVITY, _LOG_LOCK >> 32, _LOG_LOCK & 0xFFFFFFFF):
                tally.activity[str(row["what"])] += int(row["n"])
            tally.samples += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        await conn.close()


async def groups_after(dsn: str, position: int) -> int:
    """Transactions that appended after a position: each group commit records its events
    at one recorded_at."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(DISTINCT recorded_at) FROM events WHERE position > $1", position
            )
        )
    finally:
        await conn.close()


# ---- CPU --------------------------------------------------------------------------------------


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def cpu_now(deployment: Deployment) -> Cpu:
    """Cumulative CPU seconds of the serve processes, of the deployment's database backends
    (those alive now: a backend that ended mid-round is not counted), of this process and
    of the machine."""
    serve = 0.0
    for server in deployment.processes:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(server.process.pid)
            serve += sum(_cpu_seconds(p) for p in [process, *process.children(recursive=True)])
    postgres: float | None = None
    with contextlib.suppress(OSError, asyncpg.PostgresError, psutil.Error):
        conn = await asyncpg.connect(deployment.dsn)
        try:
            pids = [
                int(r["pid"])
                for r in await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        finally:
            await conn.close()
        postgres = 0.0
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                postgres += _cpu_seconds(psutil.Process(pid))
    machine = psutil.cpu_times()
    busy = float(machine.user + machine.nice + machine.system + machine.irq + machine.softirq + machine.steal)
    return Cpu(serve, postgres, _cpu_seconds(psutil.Process()), busy)


# ---- deployments ---------------------------------------------------------------------------------


async def deploy(procs: Processes, dbs: Databases, name: str, count: int, shape: str) -> Deployment:
    """`count` API processes on a fresh database: each a `serve` standing for the
    projector's election (shape "serve"), or each a `serve --no-projector` beside one
    `hiring-news project` (shape "replicas")."""
    dsn = await dbs.create(f"{shape}_{name}")
    servers = []
    projector = None
    for i in range(count):
        port = free_port()
        argv = serve_argv(port, projector=shape == "serve")
        servers.append(procs.start(f"processes-{shape}-{name}-{i}", argv, service_env(dsn), port))
    for server in servers:
        await wait_ready(server, "/readyz")
    if shape == "replicas":
        projector = procs.start(f"processes-{shape}-{name}-project", project_argv(), service_env(dsn), 0)
    return Deployment(name, dsn, servers, projector)


# The projector's election lock (service/sql/projector.sql): held by the one that works.
_ELECTED = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND classid = 720194 AND objsubid = 2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def elected(dsn: str) -> int:
    """How many projectors hold the election lock: one, whatever the processes."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(_ELECTED))
    finally:
        await conn.close()


async def roles(deployment: Deployment) -> list[str]:
    async with httpx.AsyncClient(timeout=5) as client:
        found = []
        for base in deployment.bases:
            try:
                found.append(str((await client.get(f"{base}/readyz")).json().get("projector")))
            except httpx.HTTPError:
                found.append("unreachable")
        return found


async def head_and_checkpoint(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT coalesce(max(position), 0) FROM events) AS head, "
            "(SELECT position FROM projection_checkpoint) AS checkpoint"
        )
        assert row is not None
        return int(row["head"]), int(row["checkpoint"])
    finally:
        await conn.close()


async def analyze(dsn: str) -> None:
    """What autovacuum would have done by now. The bench's PostgreSQL may run without it
    (`SHOW autovacuum`), and then a plan a connection cached while the tables were empty
    is never made again: the append's lookups of keys and ids would scan the whole log,
    more slowly with every round, in whichever deployment's connections happened to cache
    such a plan. ANALYZE gives the planner the tables' sizes and invalidates those plans."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def caught_up(dsn: str, timeout: float) -> tuple[float, int]:
    """Wait (bounded) for the projector to reach the head: (seconds waited, events still behind)."""
    started = time.perf_counter()
    while True:
        head, checkpoint = await head_and_checkpoint(dsn)
        waited = time.perf_counter() - started
        if checkpoint >= head or waited >= timeout:
            return waited, head - checkpoint
        await asyncio.sleep(0.2)


# ---- profiles ---------------------------------------------------------------------------------------


def spy(deployment: Deployment, seconds: float, directory: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on every serve process for `seconds` (sampling without pausing them)."""
    directory.mkdir(parents=True, exist_ok=True)
    record = [
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "-f",
        "raw",
        "--nolineno",
        "--nonblocking",
    ]
    return [
        subprocess.Popen(
            [*record, "-p", str(server.process.pid), "-d", str(max(1, round(seconds))), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, server in enumerate(deployment.processes)
        for out in [directory / f"{deployment.name}-{i}.txt"]
    ]


def where(files: list[Path], top: int = 8) -> dict[str, Any]:
    """Samples (py-spy leaves idle threads out: time the process ran Python or C under it)
    by the file of the innermost frame, as shares of all samples."""
    by_file: Counter[str] = Counter()
    for path in files:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                leaf = stack.rsplit(";", 1)[-1]
                found = leaf[leaf.rfind("(") + 1 : leaf.rfind(")")] if "(" in leaf else leaf
                by_file[found] += int(count)
    total = sum(by_file.values())
    return {
        "samples": total,
        "top": [(name, round(n / total, 3)) for name, n in by_file.most_common(top)] if total else [],
    }


# ---- the run --------------------------------------------------------------------------------------


def summary(rounds: list[tuple[Tally, Cpu]]) -> dict[str, Any]:
    seconds = sum(t.seconds for t, _ in rounds)
    latencies = Tally(latencies=[x for t, _ in rounds for x in t.latencies])
    postgres = [c.postgres for _, c in rounds]
    events = sum(t.events for t, _ in rounds)
    return {
        "events_per_s": sum(t.events for t, _ in rounds) / seconds,
        "requests_per_s": sum(t.requests for t, _ in rounds) / seconds,
        "events": sum(t.events for t, _ in rounds),
        "requests": sum(t.requests for t, _ in rounds),
        "errors": sum(t.errors for t, _ in rounds),
        "retries": sum(t.retries for t, _ in rounds),
        "why": dict(sum((t.why for t, _ in rounds), Counter[str]())),
        "groups_per_s": sum(t.groups for t, _ in rounds) / seconds,
        "events_per_group": events / groups if (groups := sum(t.groups for t, _ in rounds)) else None,
        # Backends of the deployment's database doing each thing, on average over the samples.
        "backends": {
            what: round(n / samples, 2)
            for what, n in sum((t.activity for t, _ in rounds), Counter[str]()).most_common()
        }
        if (samples := sum(t.samples for t, _ in rounds))
        else {},
        # How long each appending transaction held the log's lock: the share of samples
        # in which it was held, over the transactions a second.
        "lock_ms_per_transaction": 1000
        * sum(t.activity["holding the log lock"] for t, _ in rounds)
        / samples
        / (groups / seconds)
        if samples and groups
        else None,
        "seconds": seconds,
        "p50_ms": latencies.percentile(0.50),
        "p99_ms": latencies.percentile(0.99),
        "p50_ms_by_process": [
            percentile([x for t, _ in rounds for x in t.by_process[i]], 0.5)
            for i in range(len(rounds[0][0].by_process))
        ],
        # In cores: CPU seconds over wall seconds.
        "cores_serve": sum(c.serve for _, c in rounds) / seconds,
        "cores_postgres": None if None in postgres else sum(p or 0.0 for p in postgres) / seconds,
        "cores_writers": sum(c.writers for _, c in rounds) / seconds,
        "cores_machine": sum(c.machine for _, c in rounds) / seconds,
        # What an event costs, whoever else shares the machine: a process that folded what
        # the others appended would show here, more CPU per event with more processes.
        "serve_cpu_ms_per_event": sum(c.serve for _, c in rounds) * 1000 / events if events else None,
        "postgres_cpu_ms_per_event": None
        if None in postgres or not events
        else sum(p or 0.0 for p in postgres) * 1000 / events,
    }


def describe(name: str, s: dict[str, Any]) -> str:
    pg = "?" if s["cores_postgres"] is None else f"{s['cores_postgres']:.2f}"
    return (
        f"{name}: {s['events_per_s']:.0f} events/s, {s['requests_per_s']:.0f} requests/s "
        f"(p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, errors {s['errors']}, retries {s['retries']} {s['why']}); "
        f"cores: serve {s['cores_serve']:.2f}, postgres {pg}, writers {s['cores_writers']:.2f}, "
        f"machine {s['cores_machine']:.2f} of {psutil.cpu_count()}; CPU per event: serve "
        f"{s['serve_cpu_ms_per_event']:.2f} ms, postgres "
        + ("?" if s["postgres_cpu_ms_per_event"] is None else f"{s['postgres_cpu_ms_per_event']:.2f} ms")
        + "; p50 by process "
        + ", ".join(
            f"{ms:.0f} ms ({role})" for ms, role in zip(s["p50_ms_by_process"], s["roles"], strict=True)
        )
        + f"; {s['groups_per_s']:.0f} appending transactions/s of {s['events_per_group'] or 0:.1f} events, "
        + f"each holding the log's lock {s['lock_ms_per_transaction'] or 0:.0f} ms; "
        + "backends on average: "
        + (", ".join(f"{what} {n:.2f}" for what, n in s["backends"].items()) or "none seen")
    )


async def measure(
    procs: Processes,
    dbs: Databases,
    *,
    writers: int,
    seconds: float,
    rounds: int,
    shape: str = "serve",
    profile: Path | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both deployments side by side (`seconds` of load each, over `rounds` ABBA rounds);
    their servers are stopped on the way out, their databases left to `dbs`."""
    per_round = seconds / rounds
    results: dict[str, Any] = {
        "shape": shape,
        "writers": writers,
        "seconds_per_round": per_round,
        "rounds": rounds,
        "cores": psutil.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    deployments: list[Deployment] = []
    try:
        deployments.append(await deploy(procs, dbs, "one", 1, shape))
        deployments.append(await deploy(procs, dbs, "three", 3, shape))
        for deployment in deployments:
            # A moment of the same load first: the processes' first requests, the pools'
            # connections, the lab ids the events introduce.
            await round_of(deployment, writers, 2.0, f"warm{os.getpid()}{deployment.name}")
            await caught_up(deployment.dsn, CATCH_UP_SECONDS)
            await analyze(deployment.dsn)
        got: dict[str, list[tuple[Tally, Cpu]]] = {d.name: [] for d in deployments}
        catch_up: dict[str, list[float]] = {d.name: [] for d in deployments}
        for r in range(rounds):
            for deployment in deployments if r % 2 == 0 else reversed(deployments):
                last = r == rounds - 1
                spies = spy(deployment, per_round, profile) if profile and last else []
                tally, cpu = await round_of(
                    deployment, writers, per_round, f"r{os.getpid()}{deployment.name}{r}"
                )
                for process in spies:
                    process.wait(timeout=60)
                got[deployment.name].append((tally, cpu))
                seen = await roles(deployment)
                holders = await elected(deployment.dsn)
                waited, behind = await caught_up(deployment.dsn, CATCH_UP_SECONDS)
                await analyze(deployment.dsn)
                catch_up[deployment.name].append(waited)
                say(
                    f"{deployment.name} round {r + 1}: {tally.events / tally.seconds:.0f} events/s, "
                    f"{tally.requests / tally.seconds:.0f} requests/s, errors {tally.errors}, "
                    f"retries {tally.retries}; API processes' projectors {seen}; caught up in {waited:.1f} s"
                    + (f" ({behind} events still behind)" if behind else "")
                )
                if holders != 1 or (shape == "serve" and seen.count("active") != 1):
                    raise RuntimeError(
                        f"{deployment.name}: not exactly one projector active: {seen}, {holders}"
                    )
        for deployment in deployments:
            results[deployment.name] = {
                **summary(got[deployment.name]),
                "catch_up_seconds": catch_up[deployment.name],
                "roles": await roles(deployment),
                "rss_mib": [round(s.rss() / 2**20) for s in deployment.processes],
                "profile": where(sorted(profile.glob(f"{deployment.name}-*.txt"))) if profile else None,
                "rounds": [{**t.counts(), "cpu": asdict(c)} for t, c in got[deployment.name]],
            }
        one, three = results["one"], results["three"]
        results["ratio_events"] = three["events_per_s"] / one["events_per_s"]
        results["ratio_requests"] = three["requests_per_s"] / one["requests_per_s"]
        return results
    finally:
        for deployment in deployments:
            for server in deployment.processes:
                server.stop()
                with contextlib.suppress(ValueError):
                    procs.servers.remove(server)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    dbs = Databases(admin, f"{os.getpid()}p")
    procs = Processes(RESULTS / "logs")
    try:
        results = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join([Path(sys.executable).name, "-m", "bench.processes", *sys.argv[1:]]),
        }
        return results | await measure(
            procs,
            dbs,
            writers=args.writers,
            seconds=args.seconds,
            rounds=args.rounds,
            shape=args.shape,
            profile=args.profile,
            say=lambda line: print(f"  . {line}", flush=True),
        )
    finally:
        procs.stop_all()
        await dbs.drop_all()


def outcome(results: dict[str, Any]) -> list[str]:
    """The figures, for people: each deployment, where the samples went, the ratio."""
    lines = [describe("one process", results["one"]), describe("three processes", results["three"])]
    for name in ("one", "three"):
        profile = results[name].get("profile")
        if profile:
            shares = ", ".join(f"{file} {share:.0%}" for file, share in profile["top"])
            lines.append(f"where {name} spent its samples ({profile['samples']}): {shares}")
    verdict = "pass" if results["ratio_events"] >= GOAL else "miss"
    lines.append(
        f"three/one: {results['ratio_events']:.2f} in events/s, {results['ratio_requests']:.2f} in requests/s "
        f"(goal >= {GOAL}: {verdict})"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processes", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="each deployment's load, split over the rounds"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds per deployment, in ABBA order")
    parser.add_argument("--writers", type=int, default=WRITERS, help="concurrent writers")
    parser.add_argument(
        "--shape",
        choices=("serve", "replicas"),
        default="serve",
        help="serve: every process a `serve` standing for the projector's election (the default deployment); "
        "replicas: every process a `serve --no-projector`, beside one `hiring-news project`",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy every serve process in the last rounds, into DIR"
    )
    args = parser.parse_args(argv)
    print(
        f"bench.processes: {args.writers} writers, one API process vs three on one database ({args.shape}), "
        f"{args.rounds} rounds of {args.seconds / args.rounds:g} s each, ABBA",
        flush=True,
    )
    try:
        with sigterm_as_interrupt():
            results = asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    for line in outcome(results):
        print(line)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "processes.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
