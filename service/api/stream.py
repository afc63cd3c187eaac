"""The live feed: GET /events/stream, the log as Server-Sent Events.

A stream catches up from `Last-Event-ID` (or `after`; with neither, from the head: only
new events), by pages of the log, then follows the log as appends commit, woken by
LISTEN on `hiring_news_log` (one connection per process, shared by every stream) and
polling as a fallback. Catching up and following are one loop over one cursor: each page
is "the events after the cursor", and positions are gap-free and committed in order
(migration 0007, `append_group`), so where one turns into the other nothing is
skipped and nothing is sent twice. Each message's `id:` is the event's position, its
`event:` the type, its `data:` the stored event exactly as GET /events gives it.

Bounded: at most HIRING_NEWS_MAX_STREAMS streams per process (a 503 problem beyond). A
page is read only once the client has taken the previous one, so nothing waits for a
client but what is being written; one write that takes longer than
HIRING_NEWS_STREAM_WRITE_TIMEOUT seconds drops the client. A pooled connection is held
only while a page is read, never while waiting. A stream sends a comment as a heartbeat
after HIRING_NEWS_STREAM_HEARTBEAT seconds of silence, so proxies keep it open and a
client can tell a quiet log from a dead connection. When the server shuts down, streams
end cleanly (`Streams.stop`) and clients reconnect with their Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final

import asyncpg
import msgspec
from litestar import Litestar, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service import store
from service.api.common import pool, settings
from service.api.contract import READ_SECURITY, problem, problems
from service.api.events import parse_types
from service.logging import get_logger
from service.problems import RETRY_AFTER_SECONDS, ProblemError
from service.projector import LOG_CHANNEL
from service.sql import QUERIES as Q
from service.watch import ChannelWatch

log = get_logger(__name__)

# Events per page while catching up; also the most a client has in flight.
PAGE: Final = 500
# A stream looks at the log at least this often, notified or not.
POLL_SECONDS: Final = 1.0
# Where the handler leaves word that it holds a stream slot, for `bounded` to give back.
_SLOT: Final = "hiring_news_stream_slot"

_encoder: Final = msgspec.json.Encoder()


class LogWatch(ChannelWatch):
    """One LISTEN on the log's channel per process, waking every stream waiting for news.

    `generation` counts the notifications (and reconnections, after which anything may
    have been missed): a stream notes it before reading a page and waits only if it has
    not moved since, so a notification between the read and the wait is never lost.
    """

    channel = LOG_CHANNEL
    what = "log watch"

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        super().__init__(dsn, schema=schema)
        self._woken = asyncio.Event()
        self.generation = 0

    def notified(self, *_: Any) -> None:
        self.wake()

    def listening_again(self) -> None:
        self.wake()  # whatever was appended while not listening

    def wake(self) -> None:
        self.generation += 1
        self._woken.set()
        self._woken = asyncio.Event()

    async def wait(self, generation: int, seconds: float) -> None:
        """Return once woken after `generation`, or after `seconds`."""
        if self.generation != generation:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)


@dataclass
class Streams:
    """The streams open in this process, at most `most`; `stop` ends them all."""

    most: int
    watch: LogWatch | None = None
    open: int = 0
    stopping: bool = False
    dropped: int = 0

    def take(self) -> bool:
        if self.stopping or self.open >= self.most:
            return False
        self.open += 1
        return True

    def give(self) -> None:
        self.open -= 1

    def stop(self) -> None:
        """End every stream at its next step (the server is shutting down)."""
        self.stopping = True
        if self.watch is not None:
            self.watch.wake()


class SlowClient(Exception):
    """A client took longer than the write timeout to take one write."""


def bounded(app: ASGIApp) -> ASGIApp:
    """The stream route's middleware: a time limit on each write, and the stream's slot
    given back however the stream ends (done, client gone, dropped, failed)."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        state = Litestar.from_scope(scope).state
        timeout = state.settings.stream_write_timeout_seconds

        slow = False

        async def timed(message: Message) -> None:
            nonlocal slow
            try:
                async with asyncio.timeout(timeout):
                    await send(message)
            except TimeoutError:
                slow = True
                raise SlowClient from None

        try:
            await app(scope, receive, timed)
        except Exception:
            # Litestar wraps what a stream raises once the answer has started.
            if not slow:
                raise
            # What was written stays in the transport's bounded buffer; nothing more is.
            state.streams.dropped += 1
            log.warning("live stream dropped: the client is too slow", seconds=timeout)
        finally:
            if scope.get("state", {}).pop(_SLOT, False):
                state.streams.give()

    return handle


async def _feed(
    request: Request[Any, Any, Any], streams: Streams, cursor: int, types: list[str] | None
) -> AsyncIterator[ServerSentEventMessage]:
    watch: LogWatch = request.app.state.watch_log
    heartbeat = settings(request).stream_heartbeat_seconds
    loop = asyncio.get_running_loop()
    # A comment first, so the client sees the stream open at once. (No `retry:` field: some
    # clients hand a message of no data but a retry to their reader as an empty event.)
    yield ServerSentEventMessage(data=None, comment="hiring-news live feed")
    written = loop.time()
    while not streams.stopping:
        generation = watch.generation
        try:
            async with pool(request).acquire() as conn:
                rows = await conn.fetch(Q["stream_page"], cursor, types, PAGE)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The client reconnects with its Last-Event-ID, perhaps to another replica.
            log.warning("live stream ended: the database failed", error=type(error).__name__)
            return
        events = [store.stored_event(r) for r in rows if r["position"] is not None]
        for event in events:
            yield ServerSentEventMessage(
                data=_encoder.encode(event).decode(), event=event.type, id=event.position
            )
        if events:
            written = loop.time()
        if len(events) == PAGE:
            cursor = events[-1].position
            continue  # more may be waiting
        # Fewer than a page: every position up to the head has been looked at.
        cursor = max(cursor, int(rows[0]["head"]))
        silent = loop.time() - written
        if silent >= heartbeat:
            yield ServerSentEventMessage(data=None, comment="heartbeat")
            written = loop.time()
            continue
        await watch.wait(generation, min(POLL_SECONDS, heartbeat - silent))


STREAM_DESCRIPTION: Final = (
    "Server-Sent Events: the log as it grows. The stream first catches up from `Last-Event-ID` "
    "(or `after`; with neither, it starts at the log's head and sends only new events), then sends "
    "each event as it commits, in position order, each exactly once: `id:` is the event's position, "
    "`event:` its type, `data:` the stored event as GET /events gives it. A comment (`: heartbeat`) "
    "comes after HIRING_NEWS_STREAM_HEARTBEAT seconds (default 15) without an event. Reconnect with "
    "the last `id:` received in Last-Event-ID to go on where the stream stopped, as EventSource does "
    "by itself. A process serves at most HIRING_NEWS_MAX_STREAMS streams (default 100) and answers "
    "503 beyond; a client that takes longer than HIRING_NEWS_STREAM_WRITE_TIMEOUT seconds (default "
    "10) to take one write is dropped."
)


@get(
    "/events/stream",
    summary="The log as it grows, as Server-Sent Events",
    description=STREAM_DESCRIPTION,
    tags=["events"],
    security=READ_SECURITY,
    middleware=[bounded],
    responses={
        200: ResponseSpec(
            str,
            description="A stream of events (`text/event-stream`), never ending by itself.",
            media_type="text/event-stream",
            generate_examples=False,
        ),
        **problems(400, 401, 429, 500),
        503: problem(
            503,
            "This process serves as many streams as it may (HIRING_NEWS_MAX_STREAMS), or the database "
            "is unreachable; retry after Retry-After seconds.",
        ),
    },
)
async def stream_events(
    request: Request[Any, Any, Any],
    after: Annotated[
        int | None,
        QueryParameter(ge=0, description="start after this position (Last-Event-ID, when sent, wins)"),
    ] = None,
    type_: Annotated[
        str | None, QueryParameter(name="type", description="comma-separated event types", max_length=1000)
    ] = None,
    last_event_id: Annotated[
        int | None,
        HeaderParameter(
            name="Last-Event-ID", ge=0, description="the last `id:` received: go on after that position"
        ),
    ] = None,
) -> ServerSentEvent:
    types = parse_types(type_)
    cursor = last_event_id if last_event_id is not None else after
    if cursor is None:
        async with pool(request).acquire() as conn:
            cursor = await store.head(conn)
    streams: Streams = request.app.state.streams
    if not streams.take():
        raise ProblemError(
            503,
            f"this process already serves {streams.most} live streams, the most it may; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    request.scope["state"][_SLOT] = True
    return ServerSentEvent(_feed(request, streams, cursor, types))
