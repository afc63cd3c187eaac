"""The projector: one process at a time keeps the projection, behind the log.

It runs inside `serve` by default, alone as `hiring-news project`, and not at all in
`serve --no-projector`. Every process that runs one takes part in an election: the one
holding a session advisory lock (on its own connection) works, the others stand by and
ask again every second, so one takes over within about a second of the worker's
connection going away, a killed process's included. While working, it applies batches
(`service.projection`) until it has caught up with the log, then waits for an append's
NOTIFY, or polls, and goes on. Any failure rolls its batch back, drops what it holds in
memory and starts again from the checkpoint, reconnecting if need be: every event takes
effect exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final, Literal

import asyncpg

from service import database
from service.logging import get_logger
from service.projection import BATCH_EVENTS, MEMORY_CLAIMS, Projection, Stats, Superseded, project_up_to
from service.sql import QUERIES as Q

log = get_logger(__name__)

LOG_CHANNEL: Final = "hiring_news_log"
PROJECTION_CHANNEL: Final = "hiring_news_projection"
# A standby asks for the lock this often; a worker with nothing to do looks at the log
# this often even without a notification.
ELECTION_SECONDS: Final = 1.0
POLL_SECONDS: Final = 1.0

Role = Literal["starting", "active", "standby", "stopped"]


class Projector:
    """One projector, taking part in the election until stopped."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        batch: int = BATCH_EVENTS,
        memory_claims: int = MEMORY_CLAIMS,
        election_seconds: float = ELECTION_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._batch = batch
        self._memory_claims = memory_claims
        self._election = election_seconds
        self._poll = poll_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.role: Role = "starting"
        self.position: int | None = None  # the checkpoint, as this projector last moved it
        self.batches = 0
        self.events = 0
        self.failures = 0  # faults of its own code, in a row
        # When its loop last went round (time.monotonic()): every second or so, whatever
        # the role, and after every batch. `project --heartbeat` stops beating when this
        # grows old, so an orchestrator restarts a projector stuck on a query.
        self.turned_at = time.monotonic()

    # ---- running ----

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="hiring-news projector")

    async def stop(self) -> None:
        """Finish the batch under way, give the lock up, and stop."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait([self._task])

    async def run(self) -> None:
        while not self._stopping.is_set():
            self.turned_at = time.monotonic()
            conn: asyncpg.Connection | None = None
            try:
                conn = await database.connect(self._dsn, schema=self._schema)
                if not await conn.fetchval(Q["projector_election"]):
                    self._become("standby")
                    await self._rest(self._election)
                    continue
                self._become("active")
                await self._work(conn)
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                # A session the server ended, used before asyncpg saw it close (see
                # problems.UNAVAILABLE): uncaught, it would end the projector for good.
                asyncpg.InternalClientError,
                Superseded,
            ) as error:
                log.warning("projector interrupted; starting again from the checkpoint", error=repr(error))
                self._become("standby")
                await self._rest(self._election)
            except Exception:
                # Anything else is a fault of this code, not of the database: the batch
                # rolled back, so say it loudly and try again from the checkpoint, more
                # slowly, rather than end the projector while the process says it runs one.
                # (A lag that keeps growing on /readyz and /metrics then shows it too.)
                self.failures += 1
                log.exception("projector failed; starting again from the checkpoint", failures=self.failures)
                self._become("standby")
                await self._rest(min(60.0, self._election * 2**self.failures))
            finally:
                if conn is not None:
                    # Closing the session gives the election lock up at once.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
        self._become("stopped")

    def _become(self, role: Role) -> None:
        if role != self.role:
            log.info(f"projector {role}")
        self.role = role

    async def _rest(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _work(self, conn: asyncpg.Connection) -> None:
        appended = asyncio.Event()

        def wake(*_: Any) -> None:
            appended.set()

        await conn.add_listener(LOG_CHANNEL, wake)
        projection = Projection(batch=self._batch, memory_claims=self._memory_claims)
        while not self._stopping.is_set():
            self.turned_at = time.monotonic()
            appended.clear()
            stats = await self.step(conn, projection)
            self.failures = 0
            if stats.events:
                continue  # more may be waiting: no sleep while behind
            waits = [asyncio.ensure_future(appended.wait()), asyncio.ensure_future(self._stopping.wait())]
            try:
                await asyncio.wait(waits, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def step(self, conn: asyncpg.Connection, projection: Projection) -> Stats:
        started = time.perf_counter()
        stats = await projection.step(conn)
        self.position = stats.position
        if stats.events:
            self.batches += 1
            self.events += stats.events
            log.debug(
                "projected",
                events=stats.events,
                position=stats.position,
                derived=stats.derived,
                loaded=stats.loaded,
                queries=stats.queries,
                seconds=round(time.perf_counter() - started, 3),
            )
        return stats


async def settle(
    dsn: str,
    upto: int,
    *,
    schema: str | None = None,
    progress: Callable[[int], None] | None = None,
    poll_seconds: float = 0.2,
) -> int:
    """Wait until the projection reaches `upto`, and return where it is.

    When no projector is active (a newcomer importing with no `serve` running), this
    one wins the election and projects itself, holding the lock like any projector;
    otherwise it watches the active one's checkpoint, and takes over if that one goes.
    """
    conn = await database.connect(dsn, schema=schema)
    try:
        moved = asyncio.Event()
        await conn.add_listener(PROJECTION_CHANNEL, lambda *_: moved.set())
        projection = Projection()
        while True:
            position = int(await conn.fetchval(Q["checkpoint"]))
            if progress is not None:
                progress(position)
            if position >= upto:
                return position
            if await conn.fetchval(Q["projector_election"]):
                log.info("no projector active: projecting here", upto=upto)
                return await project_up_to(conn, projection, upto, progress)
            moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), poll_seconds)
    finally:
        await conn.close()
