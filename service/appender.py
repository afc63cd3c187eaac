"""Group commit: the POSTs waiting in this process are appended together, in one transaction.

Every append costs the same two round trips (the lookups, then append_group with its
commit and WAL flush) whatever its size, and holds the log's lock for the second, so
appending one request at a time leaves the server mostly waiting.
Here handlers queue their batch and wait; one worker takes everything queued at that
moment (up to about GROUP_EVENTS events), appends it with store.append_many on one
connection, answers every waiter, and loops. When idle, a request is taken at once: no
timer ever waits for company. Under load, whatever queued during one commit goes into
the next, so the group grows with the load.

Each request keeps its own semantics: its batch is stored whole or not at all, a 409 or
422 of one request leaves the others of its group alone, and a database failure fails
every request of the group with the error a lone append would have given.

A request submitted is appended exactly once, whether or not its submitter still waits:
a client that goes away is simply not told.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from service import events as ev
from service import store
from service.database import Connections

# About what one request may hold: a group stops growing once it reaches this many
# events, and a single request of up to that many is always taken whole.
GROUP_EVENTS: Final = ev.MAX_BATCH


class Closed(ConnectionError):
    """The appender is stopped (the process is shutting down).

    A ConnectionError, so the API answers 503 with Retry-After, as when the log cannot
    be reached: another replica, or this one restarted, will take the retry.
    """


@dataclass(frozen=True, slots=True)
class _Waiting:
    batch: store.Batch
    answer: asyncio.Future[list[store.Appended]]


class Appender:
    """One per process, owned by the app: started in its lifespan, stopped on the way out."""

    def __init__(self, pool: asyncpg.Pool | Connections) -> None:
        self._pool = pool
        self._queue: collections.deque[_Waiting] = collections.deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._worker: asyncio.Task[None] | None = None
        self.groups = 0  # how many groups the requests made (a transaction each, at least)

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="hiring-news appender")

    async def stop(self) -> None:
        """Append what is queued, then stop; later submissions raise Closed."""
        self._closing = True
        self._wake.set()
        if self._worker is not None:
            await asyncio.wait([self._worker])  # returns, rather than raises, if it was cancelled

    async def append(
        self, events: Sequence[ev.Event], api_key_name: str | None = None
    ) -> list[store.Appended]:
        """Append one request's batch with whatever else is waiting; raises what store.append raises."""
        if self._closing or self._worker is None or self._worker.done():
            raise Closed("the service is shutting down")
        waiting = _Waiting(store.Batch(events, api_key_name), asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._wake.set()
        # A cancelled handler cancels only this wait: the batch stays queued, or in the
        # group being appended, and the worker skips answering it.
        return await waiting.answer

    async def _run(self) -> None:
        group: list[_Waiting] = []
        try:
            while await self._queued():
                try:
                    # One connection for as long as requests keep coming: there is no
                    # need to go back to the pool between groups.
                    async with self._pool.acquire() as conn:
                        while self._queue:
                            group = self._take()
                            await self._commit(conn, group)
                except Exception as error:
                    # Every request of the failed group gets the error (each handler logs
                    # it); if no connection could be had, the requests queued then do.
                    # The worker goes on with the next group.
                    _fail(group or self._take(), error)
                group = []
        except BaseException as error:
            # Cancelled (the event loop is going away): no request may be left waiting.
            self._closing = True
            _fail([*group, *self._queue], error)
            self._queue.clear()
            raise

    async def _queued(self) -> bool:
        """Wait until a request is queued; False once stopping with nothing left to append."""
        while not self._queue:
            if self._closing:
                return False
            self._wake.clear()
            await self._wake.wait()
        return True

    def _take(self) -> list[_Waiting]:
        """Everything queued now, in arrival order, up to GROUP_EVENTS events (at least one request)."""
        group = [self._queue.popleft()]
        size = len(group[0].batch.events)
        while self._queue and size + len(self._queue[0].batch.events) <= GROUP_EVENTS:
            waiting = self._queue.popleft()
            size += len(waiting.batch.events)
            group.append(waiting)
        return group

    async def _commit(self, conn: store.Conn, group: list[_Waiting]) -> None:
        self.groups += 1
        try:
            outcomes = await store.append_many(conn, [w.batch for w in group])
        except store.DATA_ERRORS:
            if len(group) == 1:
                raise
            # A value PostgreSQL refuses (the checks before it are meant to catch them
            # all) belongs to one request, not to its group: append each alone, so that
            # only the request holding it gets the error.
            for waiting in group:
                try:
                    [outcome] = await store.append_many(conn, [waiting.batch])
                except store.DATA_ERRORS as error:
                    _fail([waiting], error)
                else:
                    _answer(waiting, outcome)
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            _answer(waiting, outcome)


def _answer(waiting: _Waiting, outcome: store.Outcome) -> None:
    if waiting.answer.done():
        return
    if isinstance(outcome, store.AppendError):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)


def _fail(group: list[_Waiting], error: BaseException) -> None:
    for waiting in group:
        if waiting.answer.done():
            continue  # answered before the failure (appended alone, above)
        if isinstance(error, asyncio.CancelledError):
            waiting.answer.cancel()
        else:
            waiting.answer.set_exception(error)
