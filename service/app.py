"""Wiring: one function builds the Litestar app from settings and a database address."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from service import database, problems, store
from service.api import common, contract, document, events, health, reads, stream
from service.appender import Appender
from service.logging import get_logger
from service.metrics import Metrics
from service.middleware import wrap
from service.projector import Projector
from service.settings import Settings
from service.ui import pages
from service.watch import ProjectionWatch

log = get_logger(__name__)

ROUTES: list[ControllerRouterHandler] = [
    events.post_events,
    events.list_events,
    events.get_event,
    stream.stream_events,
    reads.router,
    health.healthz,
    health.readyz,
    health.metrics,
]


def create_app(
    settings: Settings, dsn: str, *, schema: str | None = None, projector: bool = True
) -> Litestar:
    """The app on the database at `dsn`; with `projector`, it also takes part in the
    projector's election (`serve` without --no-projector)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        conn = await database.connect(dsn, schema=schema)
        try:
            await database.migrate(conn)
        finally:
            await conn.close()
        bounded = functools.partial(
            database.create_pool,
            schema=schema,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            statement_timeout=settings.statement_timeout_seconds,
            lock_timeout=settings.lock_timeout_seconds,
        )
        app.state.pool = await bounded(dsn)
        app.state.read_pool = app.state.pool
        if settings.database_read_url:
            app.state.read_pool = await bounded(settings.database_read_url)
        app.state.connections = database.Connections(app.state.pool, settings.acquire_timeout_seconds)
        app.state.read_connections = database.Connections(
            app.state.read_pool, settings.acquire_timeout_seconds
        )
        # One appender per process: concurrent POSTs are appended together (group commit).
        app.state.appender = Appender(app.state.connections)
        app.state.appender.start()
        app.state.watch = ProjectionWatch(dsn, schema=schema)
        app.state.watch.start()
        # One LISTEN on the log per process, for every live stream (GET /events/stream).
        app.state.watch_log = app.state.streams.watch = stream.LogWatch(dsn, schema=schema)
        app.state.watch_log.start()
        app.state.projector = Projector(dsn, schema=schema) if projector else None
        if app.state.projector is not None:
            app.state.projector.start()
        log.info("ready", pool_max=settings.pool_max, projector=projector)
        try:
            yield
        finally:
            # Appends what is queued before the pool closes under it; the projector
            # finishes its batch and gives its lock up to a standby.
            await app.state.appender.stop()
            if app.state.projector is not None:
                await app.state.projector.stop()
            await app.state.watch.stop()
            app.state.streams.stop()
            await app.state.watch_log.stop()
            if app.state.read_pool is not app.state.pool:
                await app.state.read_pool.close()
            await app.state.pool.close()

    app = Litestar(
        # The pages (service/ui) are views of the same reads, outside the contract.
        route_handlers=[*ROUTES, *pages.routers()],
        template_config=pages.template_config(),
        lifespan=[lifespan],
        exception_handlers={
            problems.ProblemError: problems.on_problem,
            HTTPException: problems.on_http_exception,
            **dict.fromkeys(problems.UNAVAILABLE, problems.on_unavailable),
            asyncpg.InterfaceError: problems.on_interface_error,
            **dict.fromkeys(store.DATA_ERRORS, problems.on_data_error),
            UnicodeDecodeError: problems.on_undecodable,
            RecursionError: problems.on_undecodable,
            Exception: problems.on_unexpected,
        },
        # Keys and rate limits for every operation that declares security; see common.access.
        guards=[common.access],
        before_request=common.screen_body,
        # The handler refuses bodies over 1 MiB with its own message; this is the hard stop
        # for anything larger, before it is read into memory.
        request_max_body_size=2 * 1024 * 1024,
        # Off unless origins are configured: browsers then get no Access-Control-* headers.
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None,
        openapi_config=OpenAPIConfig(
            title="hiring-news",
            version="0.1.0",
            description="\n\n".join(" ".join(p.split()) for p in DESCRIPTION.split("\n\n")),
            components=contract.SECURITY_SCHEMES,
            render_plugins=[document.ContractPlugin(as_yaml=True), document.ContractPlugin(as_yaml=False)],
        ),
        logging_config=None,
        debug=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.limits = common.Limits.from_settings(settings)
    app.state.streams = stream.Streams(settings.max_streams)
    # Outside the router, so the 404s and 405s Litestar answers itself get the headers too.
    wrap(app, metrics)
    return app


DESCRIPTION = """Who works where in the AI industry, from the news: an append-only event log with
bitemporal projections. Scrapers POST events (one claim from one source each); readers ask
for rosters, careers, org trees and talent flows on any date, as the log knew it at any
time (`known_at`, a timestamp, or `as_of`, a log position).

Errors are RFC 9457 `application/problem+json` documents; `errors` lists field-level
reasons with the JSON path (`field`) and JSON Pointer (`pointer`) of each.

Writes need an API key; reads are public unless the server sets
HIRING_NEWS_READ_KEY_REQUIRED, and then any valid key reads. When rate limiting is on
(HIRING_NEWS_RATE_LIMIT), every answer carries RateLimit-* headers and a refusal is a 429
with Retry-After.

Any request may also be answered, as a problem, 404 (no such route), 405 (no such method
on it) or 431 (request headers over 32 KiB).
"""
