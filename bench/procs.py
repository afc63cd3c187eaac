"""Databases and server processes the benchmark starts, and always stops or drops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_KEY = "bench-bootstrap-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@dataclass
class Databases:
    """Fresh databases on the server at `admin_url`, dropped by `drop_all`."""

    admin_url: str
    tag: str
    created: list[str] = field(default_factory=list)

    async def create(self, suffix: str) -> str:
        name = f"hn_bench_{self.tag}_{suffix}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return with_database(self.admin_url, name)

    async def drop_all(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            for name in reversed(self.created):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.created.clear()


@dataclass
class Server:
    """A server process on 127.0.0.1 that the benchmark started."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        """Resident memory of the process and its children, in bytes."""
        proc = psutil.Process(self.process.pid)
        return int(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]))

    def stop(self) -> None:
        stop(self.process)


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def service_env(database_url: str) -> dict[str, str]:
    """The service's defaults (no rate limits, public reads, pool of 2..10) whatever this
    shell has set, with the bench database and the bootstrap admin key."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HIRING_NEWS_") and k != "DATABASE_READ_URL"
    }
    env["DATABASE_URL"] = database_url
    env["HIRING_NEWS_BOOTSTRAP_KEY"] = BOOTSTRAP_KEY
    env["HIRING_NEWS_LOG_LEVEL"] = "warning"
    return env


class Processes:
    """Every process started through it is stopped by `stop_all`, in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[Server] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], port: int) -> Server:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            # Its own session, so a Ctrl-C in the terminal reaches the benchmark only,
            # which then stops its servers in order.
            process = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(name, process, port, log)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        while self.servers:
            self.servers.pop().stop()


async def wait_ready(server: Server, path: str = "/healthz", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if server.process.poll() is not None:
                tail = server.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(server.base + path)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server.name} not ready after {timeout} s")
            await asyncio.sleep(0.1)


def serve_argv(port: int, *, projector: bool = True) -> list[str]:
    """`serve`: with its projector (the default, one process does it all), or an API
    replica alone (`--no-projector`)."""
    argv = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    return argv if projector else [*argv, "--no-projector"]


def project_argv() -> list[str]:
    """`hiring-news project`: the projector alone, no HTTP."""
    return [sys.executable, "-m", "service.cli", "project"]


def ceiling_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.ceiling_app", "--port", str(port)]


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the benchmark like Ctrl-C does: through the cleanup path."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# autovacuum's default rule for ANALYZE: a table is analyzed once the rows changed since
# its last ANALYZE pass 50 + 10 % of its size (autovacuum_analyze_threshold,
# autovacuum_analyze_scale_factor).
_ANALYZE_DUE = """
SELECT format('%I.%I', schemaname, relname)
FROM pg_stat_user_tables
WHERE n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0)
"""


async def analyze_as_autovacuum_would(dsn: str, every: float = 10.0) -> None:
    """ANALYZE, until cancelled, each table autovacuum would analyze by now.

    The bench's PostgreSQL may run with autovacuum off (the shared test server does). A
    table that grew from empty then keeps the planner's estimate of an empty table, and
    plans cached on it (asyncpg prepares every statement) scan where they should use an
    index, ever slower as the log grows: a figure of the setup, not of the service. A
    deployment runs autovacuum; this stands in for its ANALYZE (not its VACUUM), by its
    own rule, so a figure measures what a deployment would see.
    """
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            for (table,) in await conn.fetch(_ANALYZE_DUE):
                await conn.execute(f"ANALYZE {table}")
            await asyncio.sleep(every)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def autoanalyzed(*dsns: str) -> AsyncIterator[None]:
    """`analyze_as_autovacuum_would` on each database for as long as the block runs."""
    tasks = [asyncio.create_task(analyze_as_autovacuum_would(dsn)) for dsn in dsns]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
