"""Readers waiting for the projector: woken when the projection's checkpoint moves.

Each API process listens on the channel the projector notifies after every batch
(`hiring_news_projection`), on a connection of its own to the primary, and wakes every
read waiting for a position. A woken read asks its database again, so a lost
notification, or a read replica that has not yet replayed the checkpoint it announces,
only costs a short poll, never a wrong answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, Final

import asyncpg

from service import database
from service.logging import get_logger
from service.projector import PROJECTION_CHANNEL

log = get_logger(__name__)

# A waiting read asks again at least this often, notified or not.
POLL_SECONDS: Final = 0.1
RECONNECT_SECONDS: Final = 1.0


def _set(event: asyncio.Event, *_: Any) -> None:
    event.set()


class ChannelWatch:
    """One LISTEN on a channel per process, on a connection of its own, taken up again
    whenever it is lost; `notified` is called on each notification, `listening_again` each
    time the LISTEN is (re)established. `listening` says whether it is now."""

    channel: str
    what: str  # for the task's name and the logs

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        self._dsn = dsn
        self._schema = schema
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=f"hiring-news {self.what}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def notified(self, *_: Any) -> None:
        raise NotImplementedError

    def listening_again(self) -> None:
        """Called once listening (again): a subclass catches up on what it may have missed."""

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await database.connect(self._dsn, schema=self._schema)
                closed = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set, closed))
                await conn.add_listener(self.channel, self.notified)
                self.listening = True
                self.listening_again()
                await closed.wait()
            except (OSError, asyncpg.PostgresError) as error:
                log.debug(f"{self.what} reconnecting", error=type(error).__name__)
            finally:
                self.listening = False
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            await asyncio.sleep(RECONNECT_SECONDS)


class ProjectionWatch(ChannelWatch):
    channel = PROJECTION_CHANNEL
    what = "projection watch"

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        super().__init__(dsn, schema=schema)
        self._moved = asyncio.Event()

    async def moved(self, at_most: float) -> None:
        """Return when the projection moves, or after `at_most` seconds (POLL_SECONDS at most)."""
        event = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(at_most, POLL_SECONDS))

    def notified(self, *_: Any) -> None:
        # Wake every current waiter; later ones wait for the next move.
        self._moved.set()
        self._moved = asyncio.Event()
