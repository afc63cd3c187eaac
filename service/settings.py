"""Configuration, read once from the environment. Every knob is listed in the README."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import msgspec

# Every variable the service reads: name, default, meaning. `serve --help` lists them,
# and the README's table says the same (a test compares them).
ENVIRONMENT: Final = (
    ("DATABASE_URL", "unset: embedded PostgreSQL", "the PostgreSQL to use (postgresql://user@host:5432/db)"),
    ("DATABASE_READ_URL", "DATABASE_URL", "a read replica for read endpoints"),
    ("HIRING_NEWS_DATA_DIR", ".data", "where the embedded PostgreSQL keeps its data"),
    ("HIRING_NEWS_BOOTSTRAP_KEY", "unset", "also accepted as an admin key (first start, tests, CI)"),
    ("HIRING_NEWS_LOG_LEVEL", "info (warning for the other commands)", "debug, info, warning, error"),
    ("HIRING_NEWS_POOL_MIN", "2", "the least connections in the pool, per process"),
    ("HIRING_NEWS_POOL_MAX", "10", "the most connections in the pool, per process"),
    ("HIRING_NEWS_CORS_ORIGINS", "unset (CORS off)", "comma-separated allowed origins"),
    ("HIRING_NEWS_READ_KEY_REQUIRED", "unset: reads are public", "1: any valid key is needed to read"),
    ("HIRING_NEWS_RATE_LIMIT", "0 (off)", "requests a minute per key (per process)"),
    (
        "HIRING_NEWS_RATE_LIMIT_ANONYMOUS",
        "as HIRING_NEWS_RATE_LIMIT",
        "requests a minute per client address, without a key",
    ),
    (
        "HIRING_NEWS_READ_WAIT",
        "2",
        "seconds a read waits for the projector to reach the position it asks for",
    ),
    (
        "HIRING_NEWS_STATEMENT_TIMEOUT",
        "10",
        "seconds a statement of a request may run (PostgreSQL's statement_timeout on the API's pools)",
    ),
    ("HIRING_NEWS_ACQUIRE_TIMEOUT", "5", "seconds a request waits for a pooled connection"),
    (
        "HIRING_NEWS_LOCK_TIMEOUT",
        "5",
        "seconds an append waits for the log's lock (PostgreSQL's lock_timeout)",
    ),
    ("HIRING_NEWS_MAX_STREAMS", "100", "live streams (GET /events/stream) per process; 503 beyond"),
    ("HIRING_NEWS_STREAM_HEARTBEAT", "15", "seconds of silence before a stream sends a heartbeat comment"),
    (
        "HIRING_NEWS_STREAM_WRITE_TIMEOUT",
        "10",
        "seconds one write to a stream's client may take before it is dropped",
    ),
    ("HIRING_NEWS_KEY", "unset", "the key `push` and the reading commands send with --url"),
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None
    database_read_url: str | None = None
    data_dir: Path = Path(".data")
    bootstrap_key: str | None = None
    read_key_required: bool = False
    log_level: str = "info"
    pool_min: int = 2
    pool_max: int = 10
    # Requests per minute per API key, and per client address for requests without one
    # (None: the same as with a key); 0 turns a limit off. Each process holds its own
    # token buckets (service/ratelimit.py).
    rate_limit_per_minute: int = 0
    anonymous_rate_limit_per_minute: int | None = None
    cors_origins: tuple[str, ...] = ()
    # How long a read waits for the projector to reach the position it asked for.
    read_wait_seconds: float = 2.0
    # Bounds on the database: a statement, a wait for a pooled connection, a wait for a
    # lock (the log's, for an append). Past any of them a request gets a 503.
    statement_timeout_seconds: float = 10.0
    acquire_timeout_seconds: float = 5.0
    lock_timeout_seconds: float = 5.0
    # The live feed (GET /events/stream): open streams per process (503 beyond), the
    # seconds between heartbeats, and how long one write to a client may take before the
    # client is dropped as too slow.
    max_streams: int = 100
    stream_heartbeat_seconds: float = 15.0
    stream_write_timeout_seconds: float = 10.0
    # The key `push` and the reading commands send to a service given by --url.
    client_key: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        origins = get("HIRING_NEWS_CORS_ORIGINS")
        anonymous = get("HIRING_NEWS_RATE_LIMIT_ANONYMOUS")
        return cls(
            database_url=get("DATABASE_URL"),
            database_read_url=get("DATABASE_READ_URL"),
            data_dir=Path(get("HIRING_NEWS_DATA_DIR") or ".data"),
            bootstrap_key=get("HIRING_NEWS_BOOTSTRAP_KEY"),
            read_key_required=(get("HIRING_NEWS_READ_KEY_REQUIRED") or "").lower() in {"1", "true", "yes"},
            log_level=(get("HIRING_NEWS_LOG_LEVEL") or "info").lower(),
            pool_min=int(get("HIRING_NEWS_POOL_MIN") or 2),
            pool_max=int(get("HIRING_NEWS_POOL_MAX") or 10),
            rate_limit_per_minute=int(get("HIRING_NEWS_RATE_LIMIT") or 0),
            anonymous_rate_limit_per_minute=None if anonymous is None else int(anonymous),
            cors_origins=tuple(o.strip() for o in origins.split(",")) if origins else (),
            read_wait_seconds=float(get("HIRING_NEWS_READ_WAIT") or 2.0),
            statement_timeout_seconds=float(get("HIRING_NEWS_STATEMENT_TIMEOUT") or 10.0),
            acquire_timeout_seconds=float(get("HIRING_NEWS_ACQUIRE_TIMEOUT") or 5.0),
            lock_timeout_seconds=float(get("HIRING_NEWS_LOCK_TIMEOUT") or 5.0),
            max_streams=int(get("HIRING_NEWS_MAX_STREAMS") or 100),
            stream_heartbeat_seconds=float(get("HIRING_NEWS_STREAM_HEARTBEAT") or 15.0),
            stream_write_timeout_seconds=float(get("HIRING_NEWS_STREAM_WRITE_TIMEOUT") or 10.0),
            client_key=get("HIRING_NEWS_KEY"),
        )
