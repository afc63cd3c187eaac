"""Wiring: one function builds the Litestar app from settings and a database address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import YamlRenderPlugin

from service import database, problems
from service.api import events, health, reads
from service.logging import get_logger
from service.metrics import Metrics
from service.middleware import observe
from service.projection import Projector
from service.settings import Settings

log = get_logger(__name__)

ROUTES = [
    events.post_events,
    events.list_events,
    events.get_event,
    reads.list_orgs,
    reads.get_org,
    reads.get_roster,
    reads.get_tree,
    reads.list_people,
    reads.get_timeline,
    reads.get_flows,
    reads.get_state,
    health.healthz,
    health.readyz,
    health.metrics,
]


def create_app(settings: Settings, dsn: str, *, schema: str | None = None) -> Litestar:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        conn = await database.connect(dsn, schema=schema)
        try:
            await database.migrate(conn)
        finally:
            await conn.close()
        app.state.pool = await database.create_pool(
            dsn, schema=schema, min_size=settings.pool_min, max_size=settings.pool_max
        )
        app.state.read_pool = app.state.pool
        if settings.database_read_url:
            app.state.read_pool = await database.create_pool(
                settings.database_read_url,
                schema=schema,
                min_size=settings.pool_min,
                max_size=settings.pool_max,
            )
        log.info("ready", pool_max=settings.pool_max)
        try:
            yield
        finally:
            if app.state.read_pool is not app.state.pool:
                await app.state.read_pool.close()
            await app.state.pool.close()

    app = Litestar(
        route_handlers=ROUTES,
        lifespan=[lifespan],
        exception_handlers={
            problems.ProblemError: problems.on_problem,
            HTTPException: problems.on_http_exception,
            Exception: problems.on_unexpected,
        },
        middleware=[observe(metrics)],
        request_max_body_size=2 * 1024 * 1024,
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None,
        openapi_config=OpenAPIConfig(
            title="hiring-news",
            version="0.1.0",
            description="Who works where in the AI industry, from the news: an append-only event log "
            "with bitemporal projections.",
            render_plugins=[YamlRenderPlugin()],
        ),
        logging_config=None,
        debug=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.projector = Projector()
    return app
