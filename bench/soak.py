"""A soak: `python -m bench.soak --minutes M [--rate R] [--reads R] [--plot FILE.svg] [--json FILE]`.

The design's deployment on a fresh database: two API processes (`serve --no-projector`)
and the projector alone (`project`), real processes on 127.0.0.1. Writers post generated
histories at a steady pace (claims, reorgs, retries, replays, races and conflicts: see
`bench.traffic`) and readers ask rosters, timelines, trees and flows at a steady pace,
for M minutes. Every second it samples the resident memory of every process it started
(children included) and of the database's PostgreSQL backends, the projection's lag (the
log's head minus the checkpoint), each API's readiness, the request rates and the errors.

At the end it waits for the projector to reach the head, stops the processes (each must
exit 0), and checks: positions 1..N without a gap, each idempotency key stored once,
every acknowledged event stored where its answer said, nothing stored that was not sent,
no 5xx but 503s (a 503 is counted and retried, as a client does), nothing the design
forbids seen by a client, and the projection cache equal, row for row, to a fresh
`hiring-news rebuild` of the same log. It exits 1, saying which, when one does not hold.

The database: DATABASE_URL (or --database-url), where it creates `hn_bench_soak<pid>_soak`
and drops it after; without either, the embedded PostgreSQL (the service's own default,
`service.database.embedded_server`) in a temporary data directory, removed after. Every
process and database is stopped or dropped on the way out, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import psutil
import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench import checks, soak_report
from bench.procs import (
    ROOT,
    Databases,
    Processes,
    Server,
    free_port,
    project_argv,
    serve_argv,
    service_env,
    wait_ready,
)
from bench.run import machine, postgres_version
from bench.traffic import Catalog, Readers, Tally, Writer, clients
from service import database
from service.logging import configure
from service.sql import QUERIES as Q

log = structlog.get_logger("bench.soak")

LOGS: Final = ROOT / "bench" / "results" / "logs"
MiB: Final = 2**20
# The projector's election lock (service/sql/projector.sql): a session advisory lock on
# two keys, 720194 and the schema's hash; pg_locks shows it as classid and objsubid 2.
PROJECTOR_LOCKED: Final = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND classid = 720194 AND objsubid = 2 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
# Generous: on a busy machine a probe may wait; the sample waits for it at most this long.
READY_TIMEOUT: Final = 5.0
BACKENDS: Final = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@dataclass
class Config:
    minutes: float
    rate: float
    reads: float
    writers: int
    deployment: str
    database_url: str | None
    plot: Path | None
    json: Path | None
    seed: int
    drain_timeout: float
    rebuild_timeout: float
    command: str


@dataclass
class Deployment:
    dsn: str
    apis: list[Server]
    servers: list[Server]  # the APIs and the projector, whose memory is sampled
    exits: dict[str, int] = field(default_factory=dict)


# ---- the deployment --------------------------------------------------------------------------


async def deploy(cfg: Config, procs: Processes, dsn: str) -> Deployment:
    """Two API processes and the projector (`split`, the design's), or two `serve` with a
    projector each, one elected (`replicas`, deploy/k8s as it stands)."""
    conn = await database.connect(dsn)
    try:
        await database.migrate(conn)  # once, before the processes start together
    finally:
        await conn.close()
    env = service_env(dsn)
    projecting = cfg.deployment == "replicas"
    apis = []
    for n in (1, 2):
        port = free_port()
        apis.append(procs.start(f"api-{n}", serve_argv(port, projector=projecting), env, port))
    servers = list(apis)
    if not projecting:
        servers.append(procs.start("projector", project_argv(), env, 0))
    for api in apis:
        await wait_ready(api, "/readyz")
    await projector_elected(dsn, servers)
    return Deployment(dsn, apis, servers)


def command_of(server: Server) -> str:
    """How a process was started, as a person would type it."""
    argv = [str(a) for a in server.process.args]  # type: ignore[union-attr]
    return shlex.join(["python", *argv[1:]])


async def projector_elected(dsn: str, servers: list[Server], timeout: float = 60) -> None:
    conn = await asyncpg.connect(dsn)
    deadline = time.monotonic() + timeout
    try:
        while not await conn.fetchval(PROJECTOR_LOCKED):
            for server in servers:
                if server.process.poll() is not None:
                    raise RuntimeError(
                        f"{server.name} exited with {server.process.returncode}: see {server.log}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no projector holds the election lock after {timeout} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


# ---- sampling --------------------------------------------------------------------------------


async def every_second(work: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
    """Run `work` once a second until `stop` (at once again if it took longer)."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        await work()
        next_at = max(next_at + 1.0, loop.time() - 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(next_at - loop.time(), 0.0))


class Sampler:
    """One sample a second: memory, lag, readiness, rates, errors (see the module).

    A sample waits for nothing an API process does: /readyz is asked of each by a loop of
    its own, and the sample takes the latest answer (and how long it took), so a stalled
    process shows as a slow probe, not as a missing second of memory and lag."""

    def __init__(self, deployment: Deployment, tally: Tally, started: float) -> None:
        self.deployment = deployment
        self.tally = tally
        self.started = started
        self.phase = "load"
        self.samples: list[dict[str, Any]] = []
        self.exited: dict[str, int] = {}
        self._conn: asyncpg.Connection | None = None
        self._http = httpx.AsyncClient(timeout=READY_TIMEOUT)
        self._backends: dict[int, psutil.Process] = {}
        self.ready: dict[str, tuple[int, float]] = {api.name: (0, 0.0) for api in deployment.apis}

    async def close(self) -> None:
        await self._http.aclose()
        if self._conn is not None:
            await self._conn.close()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._ask(api) for api in self.deployment.apis))
        probes = [asyncio.create_task(self._probe(api, stop)) for api in self.deployment.apis]
        try:
            await every_second(self.sample, stop)
        finally:
            for probe in probes:
                probe.cancel()
            await asyncio.gather(*probes, return_exceptions=True)

    async def _probe(self, api: Server, stop: asyncio.Event) -> None:
        await every_second(lambda: self._ask(api), stop)

    async def _ask(self, api: Server) -> None:
        started = time.perf_counter()
        status = await self._ready(api)
        self.ready[api.name] = (status, round((time.perf_counter() - started) * 1000, 1))

    async def sample(self) -> dict[str, Any]:
        if self._conn is None:
            self._conn = await asyncpg.connect(self.deployment.dsn)
        row = await self._conn.fetchrow(Q["head_and_checkpoint"])
        assert row is not None
        pids = [int(r["pid"]) for r in await self._conn.fetch(BACKENDS)]
        t = self.tally
        sample: dict[str, Any] = {
            "t": round(time.monotonic() - self.started, 2),
            "phase": self.phase,
            "rss_mib": self._rss(),
            "postgres": self._postgres(pids),
            "head": int(row["head"]),
            "projected": int(row["projected"]),
            "lag": int(row["head"]) - int(row["projected"]),
            "events": t.events,
            "write_requests": t.write_requests,
            "reads": sum(t.reads.values()),
            "errors": t.errors,
            "not_asked": t.not_asked,
            "ms": t.latencies(),
            "ready": {name: status for name, (status, _) in self.ready.items()},
            "ready_ms": {name: ms for name, (_, ms) in self.ready.items()},
            "load_1m": round(os.getloadavg()[0], 2),
        }
        self.samples.append(sample)
        return sample

    async def _ready(self, api: Server) -> int:
        """/readyz's status, or 0 when it did not answer in time (a busy machine, or a hang)."""
        try:
            return (await self._http.get(api.base + "/readyz")).status_code
        except httpx.HTTPError:
            return 0

    def _rss(self) -> dict[str, float | None]:
        found: dict[str, float | None] = {}
        for server in self.deployment.servers:
            if server.process.poll() is not None:
                self.exited.setdefault(server.name, int(server.process.returncode))
                found[server.name] = None
                continue
            try:
                found[server.name] = round(server.rss() / MiB, 2)
            except psutil.Error:
                found[server.name] = None
        return found

    def _postgres(self, pids: list[int]) -> dict[str, float | int]:
        """The database's backends: how many, and their private memory (resident, less the
        shared buffers they have touched, which every backend maps)."""
        private = 0
        for pid in pids:
            try:
                process = self._backends.get(pid) or self._backends.setdefault(pid, psutil.Process(pid))
                info = process.memory_info()
                private += info.rss - getattr(info, "shared", 0)
            except psutil.Error:
                self._backends.pop(pid, None)
        for gone in set(self._backends) - set(pids):
            del self._backends[gone]
        return {"backends": len(pids), "private_mib": round(private / MiB, 2)}


# ---- the run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        yield bar


def describe(sample: dict[str, Any]) -> str:
    return (
        f"soak: {sample['events']} events, lag {sample['lag']}, {sample['reads']} reads, "
        f"{sample['errors']} errors"
    )


async def soak(cfg: Config, deployment: Deployment) -> tuple[Tally, Sampler, float, float]:
    """The load for cfg.minutes, then the drain until the projection reaches the head;
    returns the tally, the samples, the load's end and the drain's seconds."""
    tally, catalog = Tally(), Catalog()
    seconds = cfg.minutes * 60
    bases = [api.base for api in deployment.apis]
    writing, reading = clients(bases), clients(bases)
    per_writer = cfg.rate / cfg.writers
    writers = [
        Writer(n, writing, per_writer, int(per_writer * seconds), tally, catalog, cfg.seed)
        for n in range(cfg.writers)
    ]
    readers = Readers(reading, cfg.reads, tally, catalog, cfg.seed)
    started = time.monotonic()
    sampler = Sampler(deployment, tally, started)
    stop_load, stop_sampling = asyncio.Event(), asyncio.Event()
    load = [asyncio.create_task(w.run(stop_load)) for w in writers]
    load.append(asyncio.create_task(readers.run(stop_load)))
    sampling = asyncio.create_task(sampler.run(stop_sampling))
    try:
        with progress_bar() as bar:
            task = bar.add_task("soak: starting", total=seconds)
            while (elapsed := time.monotonic() - started) < seconds:
                await asyncio.sleep(min(1.0, seconds - elapsed))
                bar.update(task, completed=min(time.monotonic() - started, seconds))
                if sampler.samples:
                    bar.update(task, description=describe(sampler.samples[-1]))
                for done in [t for t in load if t.done()]:
                    done.result()  # a writer or reader that ended early is a fault of this code
                if sampling.done():
                    sampling.result()
            stop_load.set()
            load_ended = time.monotonic() - started
            # Each writer finishes the request it has begun (retries included), and each
            # question in flight gets its answer; then they stop.
            await asyncio.wait_for(asyncio.gather(*load), 120)
            sampler.phase = "drain"
            drain = bar.add_task("projector catching up", total=None)
            drained_at = time.monotonic()
            while True:
                last = await sampler.sample() if sampling.done() else None
                last = last or (sampler.samples[-1] if sampler.samples else None)
                if last is not None and last["phase"] == "drain" and last["lag"] == 0:
                    break
                if time.monotonic() - drained_at > cfg.drain_timeout:
                    break
                bar.update(drain, description=f"projector catching up: lag {last['lag'] if last else '?'}")
                await asyncio.sleep(0.5)
            drain_seconds = time.monotonic() - drained_at
    finally:
        stop_load.set()
        stop_sampling.set()
        for t in [*load, sampling]:
            t.cancel()
        await asyncio.gather(*load, sampling, return_exceptions=True)
        for client in [*writing, *reading]:
            await client.aclose()
        await sampler.close()
    return tally, sampler, load_ended, drain_seconds


async def verify(
    cfg: Config, deployment: Deployment, procs: Processes, tally: Tally, sampler: Sampler
) -> tuple[dict[str, dict[str, Any]], float | None]:
    """Every invariant the module names: held or not, with what was seen; and the
    rebuild's seconds."""
    found: dict[str, dict[str, Any]] = {}

    def check(name: str, held: bool, detail: str) -> None:
        found[name] = {"held": held, "detail": detail}

    last = sampler.samples[-1]
    check(
        "projector reached the head",
        last["lag"] == 0,
        f"checkpoint {last['projected']} of head {last['head']} at the end",
    )
    live, twice = await checks.cache(deployment.dsn)
    problems = await checks.log_problems(deployment.dsn, tally.acknowledged, tally.sent)
    check(
        "log: positions 1..N, each key once, every acknowledged event where answered",
        not problems,
        "; ".join(problems)
        or f"{last['head']} events; {tally.events} acknowledged keys, all stored as answered",
    )
    check(
        "clients saw nothing the design forbids",
        not tally.failures,
        "; ".join(tally.failures[:5]) or "replays, races, conflicts and reads answered as designed",
    )
    fives = [s for s in tally.statuses if s.split()[1].startswith("5") and not s.endswith("503")]
    check(
        "no 5xx but 503",
        not tally.server_errors and not fives,
        "; ".join(tally.server_errors[:3])
        or f"503s: {sum(n for s, n in tally.statuses.items() if s.endswith('503'))}",
    )
    # Every process must have lived through the load, and stop cleanly when asked.
    for server in deployment.servers:
        server.stop()
        deployment.exits[server.name] = int(server.process.returncode)
    procs.servers.clear()
    check(
        "every process lived and exited 0 on SIGTERM",
        not sampler.exited and all(code == 0 for code in deployment.exits.values()),
        f"exited during the run: {sampler.exited or 'none'}; exit codes on SIGTERM: {deployment.exits}",
    )
    started = time.monotonic()
    done = await asyncio.to_thread(checks.rebuild, service_env(deployment.dsn), cfg.rebuild_timeout)
    rebuild_seconds = time.monotonic() - started
    if done.returncode != 0:
        check("cache equals a rebuild", False, f"rebuild exited {done.returncode}: {done.stderr[-500:]}")
        return found, None
    fresh, fresh_twice = await checks.cache(deployment.dsn)
    differ = checks.differences(live, fresh)
    rows = sum(len(fresh[t]) for t in checks.ROWS)
    check(
        "cache equals a rebuild",
        not differ and not twice and not fresh_twice,
        f"differences (only live, only rebuilt, rows): {differ}; open twice: {twice}"
        if differ or twice or fresh_twice
        else f"{rows} rows in {len(checks.ROWS)} tables, and the fold's {len(fresh) - len(checks.ROWS)} tables, equal",
    )
    return found, rebuild_seconds


async def run(cfg: Config, admin_url: str, mode: str) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    dbs = Databases(admin_url, f"soak{os.getpid()}")
    procs = Processes(LOGS / f"soak-{os.getpid()}")
    try:
        results: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": cfg.command,
            "config": {
                k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items() if k != "database_url"
            },
            "database": mode,
            "machine": {**machine(), "postgres": await postgres_version(admin_url)},
            "load_1m_at_start": round(os.getloadavg()[0], 2),
        }
        dsn = await dbs.create("soak")
        log.info("deploying", database=mode, deployment=cfg.deployment, logs=str(procs.log_dir))
        deployment = await deploy(cfg, procs, dsn)
        results["processes"] = {s.name: command_of(s) for s in deployment.servers}
        results["deployment"] = (
            "2 × serve --no-projector + project"
            if cfg.deployment == "split"
            else "2 × serve (one projector elected)"
        )
        log.info("soaking", minutes=cfg.minutes, rate=cfg.rate, reads=cfg.reads)
        tally, sampler, load_ended, drain_seconds = await soak(cfg, deployment)
        log.info("checking", events=tally.events, drain_seconds=round(drain_seconds, 1))
        invariants, rebuild_seconds = await verify(cfg, deployment, procs, tally, sampler)
        results["load_1m_at_end"] = round(os.getloadavg()[0], 2)
        results["summary"] = soak_report.summary(
            tally, sampler.samples, load_ended, drain_seconds, rebuild_seconds
        )
        results["invariants"] = invariants
        results["failures"] = tally.failures
        results["server_errors"] = tally.server_errors[:50]
        results["samples"] = sampler.samples
        soak_report.write(results, cfg.json, cfg.plot)
        print(soak_report.text(results), flush=True)
        broken = [name for name, found in invariants.items() if not found["held"]]
        if broken:
            print(f"soak FAILED: {len(broken)} invariants do not hold:", file=sys.stderr)
            for name in broken:
                print(f"  - {name}: {invariants[name]['detail']}", file=sys.stderr)
            print(f"  server logs: {procs.log_dir}", file=sys.stderr)
            return 1
        return 0
    finally:
        procs.stop_all()
        await dbs.drop_all()
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)


def parse(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the load (default 2)")
    parser.add_argument("--rate", type=float, default=50.0, help="events written per second (default 50)")
    parser.add_argument("--reads", type=float, default=20.0, help="reads per second (default 20)")
    parser.add_argument("--writers", type=int, default=4, help="writers, each its own world (default 4)")
    parser.add_argument(
        "--deployment",
        choices=("split", "replicas"),
        default="split",
        help="split: 2 x serve --no-projector and project (default); replicas: 2 x serve, one projector elected",
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL to create the database on (default DATABASE_URL)"
    )
    parser.add_argument("--plot", type=Path, help="write the SVG plot of memory, lag and rates here")
    parser.add_argument("--json", type=Path, help="write the samples and the figures here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="bound on the projector catching up, s"
    )
    parser.add_argument("--rebuild-timeout", type=float, default=900.0, help="bound on the final rebuild, s")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.reads <= 0 or args.writers < 1:
        parser.error("--minutes, --rate, --reads and --writers must be positive")
    return Config(
        minutes=args.minutes,
        rate=args.rate,
        reads=args.reads,
        writers=args.writers,
        deployment=args.deployment,
        database_url=args.database_url or os.environ.get("DATABASE_URL") or None,
        plot=args.plot,
        json=args.json,
        seed=args.seed,
        drain_timeout=args.drain_timeout,
        rebuild_timeout=args.rebuild_timeout,
        command=shlex.join(["python", "-m", "bench.soak", *argv]),
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse(sys.argv[1:] if argv is None else argv)
    configure("info")

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM outside the event loop (the embedded server starting or stopping) unwinds
    # like Ctrl-C, so the server is stopped and its directory removed; inside, `run` cancels.
    signal.signal(signal.SIGTERM, interrupted)
    try:
        if cfg.database_url:
            return asyncio.run(run(cfg, cfg.database_url, "server"))
        with (
            tempfile.TemporaryDirectory(prefix="hn-soak-") as data,
            database.embedded_server(Path(data)) as dsn,
        ):
            return asyncio.run(run(cfg, dsn, "embedded"))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("soak interrupted: processes stopped, database dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
