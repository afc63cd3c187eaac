"""Keys, rate limits, headers, CORS, metrics, logs and readiness: the service under operation."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
from litestar.testing import AsyncTestClient

from service import auth
from service.app import create_app
from service.middleware import CONTENT_SECURITY_POLICY
from service.ratelimit import Limiter
from tests.conftest import ADMIN, BOOTSTRAP_KEY, make_settings, with_database
from tests.e2e.server import CLI, cli, environment, free_port, serving, stop

JSON = {"content-type": "application/json"}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}


def joined(person: str = "ruoming-pang") -> dict[str, Any]:
    return {
        "type": "member.joined",
        "data": {
            "person_id": person,
            "person_name": "P",
            "org_id": "msl",
            "org_name": "MSL",
            "on": "2025-07",
        },
    }


@asynccontextmanager
async def app_client(pg_dsn: str, schema: str, **settings: Any) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(make_settings(**settings), pg_dsn, schema=schema)
    async with AsyncTestClient(app=app) as client:
        yield client


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# ---- the token bucket ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_minutes_burst_then_the_steady_rate() -> None:
    clock = Clock()
    limiter = Limiter(60, clock=clock)
    verdicts = [limiter.take("k") for _ in range(61)]
    assert all(v.allowed for v in verdicts[:60]) and not verdicts[60].allowed
    assert [v.remaining for v in verdicts[:3]] == [59, 58, 57]
    refused = verdicts[60]
    assert refused.retry_after == 1 and refused.reset == 60
    assert refused.headers() == {
        "RateLimit-Limit": "60",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "60",
        "RateLimit-Policy": "60;w=60",
        "Retry-After": "1",
    }
    clock.now += 1
    assert limiter.take("k").allowed and not limiter.take("k").allowed
    assert limiter.take("someone else").allowed
    clock.now += 3600
    assert limiter.take("k").remaining == 59


def test_buckets_stay_bounded_under_a_spray_of_names() -> None:
    clock = Clock()
    limiter = Limiter(10, clock=clock, max_buckets=100)
    for i in range(1000):
        limiter.take(f"made-up-{i}")
    assert len(limiter) <= 100
    assert not Limiter(0).enabled and Limiter(1).enabled


# ---- rate limits over HTTP ----------------------------------------------------------------


async def test_anonymous_reads_are_limited_per_address(pg_dsn: str, schema: str) -> None:
    async with app_client(pg_dsn, schema, rate_limit_per_minute=3) as client:
        answers = [await client.get("/orgs") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "3"
        assert answers[0].headers["ratelimit-policy"] == "3;w=60"
        assert int(answers[0].headers["ratelimit-reset"]) > 0

        refused = await client.get("/people")
        problem = assert_problem(refused, 429)
        assert "3 requests a minute" in problem["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["x-content-type-options"] == "nosniff"

        # Probes and the contract are never limited, and carry no RateLimit headers.
        for path in ("/healthz", "/readyz", "/metrics", "/schema/openapi.json"):
            answer = await client.get(path)
            assert answer.status_code == 200 and "ratelimit-limit" not in answer.headers, path

        # A key has its own bucket, whatever its address has spent.
        keyed = await client.get("/orgs", headers=ADMIN)
        assert keyed.status_code == 200 and keyed.headers["ratelimit-remaining"] == "2"


async def test_each_key_has_its_bucket_and_writes_count(pg_dsn: str, schema: str) -> None:
    async with app_client(pg_dsn, schema, rate_limit_per_minute=2) as client:
        conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
        try:
            other = await auth.create(conn, "other-scraper", "write")
        finally:
            await conn.close()
        assert (await client.post("/events", json=joined("a"), headers=ADMIN)).status_code == 201
        assert (await client.get("/events", headers=ADMIN)).status_code == 200
        refused = await client.post("/events", json=joined("b"), headers=ADMIN)
        assert_problem(refused, 429)
        assert (
            await client.post("/events", json=joined("b"), headers={"X-API-Key": other})
        ).status_code == 201
        # The refused write stored nothing.
        assert [e["data"]["person_id"] for e in (await client.get("/events")).json()["events"]] == ["a", "b"]


async def test_a_spray_of_made_up_keys_is_limited_by_address(pg_dsn: str, schema: str) -> None:
    async with app_client(
        pg_dsn, schema, rate_limit_per_minute=100, anonymous_rate_limit_per_minute=2
    ) as client:
        statuses = [
            (await client.get("/orgs", headers={"Authorization": f"Bearer made-up-{i}"})).status_code
            for i in range(4)
        ]
        assert statuses == [401, 401, 429, 429]


# ---- keys ---------------------------------------------------------------------------------


async def test_reads_behind_a_key_when_configured(pg_dsn: str, schema: str) -> None:
    async with app_client(pg_dsn, schema, read_key_required=True) as client:
        refused = await client.get("/orgs")
        assert_problem(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/orgs", headers=ADMIN)).status_code == 200

        conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
        try:
            key = await auth.create(conn, "reader", "write")
            assert (await client.get("/events", headers={"X-API-Key": key})).status_code == 200
            assert await auth.revoke(conn, "reader")
        finally:
            await conn.close()
        # Revocation counts at once: the key is looked up on every request.
        assert_problem(await client.get("/events", headers={"X-API-Key": key}), 401)

        for path in ("/healthz", "/readyz", "/metrics", "/schema/openapi.yaml"):
            assert (await client.get(path)).status_code == 200, path
        assert_problem(await client.post("/events", json=joined()), 401)


async def test_a_revoked_key_is_refused_even_where_none_is_needed(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert_problem(await client.get("/orgs", headers={"X-API-Key": "revoked-or-never-was"}), 401)
    assert (await client.get("/orgs")).status_code == 200


# ---- headers, CORS, request ids -----------------------------------------------------------


async def test_security_headers_on_every_answer(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    answers = {
        "ok": await client.get("/healthz"),
        "read": await client.get("/orgs"),
        "route not found": await client.get("/nowhere"),
        "not a uuid": await client.get("/events/nope"),
        "method not allowed": await client.delete("/events"),
        "options": await client.options("/events"),
        "no key": await client.post("/events", json=joined()),
        "bad parameter": await client.get("/events", params={"limit": 0}),
        "too large": await client.post(
            "/events", content=b"[" + b" " * (3 * 1024 * 1024) + b"]", headers={**JSON, **ADMIN}
        ),
        "metrics": await client.get("/metrics"),
        "contract": await client.get("/schema/openapi.yaml"),
        "schema not found": await client.get("/schema/nothing-here"),
        "headers too large": await client.get("/orgs", headers={"X-Padding": "a" * 40_000}),
    }
    for name, answer in answers.items():
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers.get(header) == value, (name, answer.status_code, header)
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), name
    for name in ("route not found", "not a uuid", "method not allowed", "too large", "headers too large"):
        assert answers[name].headers["content-type"].startswith("application/problem+json"), name
    assert answers["headers too large"].status_code == 431


async def test_request_ids_are_echoed_only_when_plain(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/healthz", headers={"X-Request-ID": "scraper-7.42"})).headers[
        "x-request-id"
    ] == "scraper-7.42"
    made_up = (await client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})).headers[
        "x-request-id"
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", made_up)


async def test_cors_is_off_unless_configured(pg_dsn: str, schema: str, client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    preflight = {"Origin": "https://news.example", "Access-Control-Request-Method": "POST"}
    assert (
        "access-control-allow-origin"
        not in (await client.get("/orgs", headers={"Origin": "https://news.example"})).headers
    )
    assert "access-control-allow-origin" not in (await client.options("/events", headers=preflight)).headers

    async with app_client(pg_dsn, schema, cors_origins=("https://news.example",)) as configured:
        allowed = await configured.get("/orgs", headers={"Origin": "https://news.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://news.example"
        assert allowed.headers["x-content-type-options"] == "nosniff"
        other = await configured.get("/orgs", headers={"Origin": "https://elsewhere.example"})
        assert other.headers.get("access-control-allow-origin") != "https://elsewhere.example"
        assert (await configured.options("/events", headers=preflight)).status_code in (200, 204)


# ---- metrics ------------------------------------------------------------------------------


async def test_metrics_by_route_template_status_and_more(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.post("/events", json=joined("a"), headers=ADMIN)).status_code == 201
    assert (
        await client.post("/events", json=[joined("b"), joined("c"), joined("a")], headers=ADMIN)
    ).status_code == 201
    assert (await client.get("/orgs/msl/roster")).status_code == 200
    assert (await client.get("/orgs/nowhere-org/roster")).status_code == 404
    assert (await client.get(f"/events/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/nowhere/at/all")).status_code == 404
    text = (await client.get("/metrics")).text

    def value(line_start: str) -> float:
        found = [line for line in text.splitlines() if line.startswith(line_start)]
        assert found, line_start
        return float(found[0].rsplit(" ", 1)[1])

    assert value('hiring_news_requests_total{method="GET",route="/orgs/{org_id}/roster",status="200"}') == 1
    assert value('hiring_news_requests_total{method="GET",route="/orgs/{org_id}/roster",status="404"}') == 1
    assert value('hiring_news_requests_total{method="GET",route="/events/{event_id}",status="404"}') == 1
    assert value('hiring_news_requests_total{method="GET",route="unmatched",status="404"}') == 1
    assert value('hiring_news_requests_total{method="POST",route="/events",status="201"}') == 2
    # Raw paths never become labels: ids would explode the series.
    assert "nowhere-org" not in text and 'route="/orgs/msl' not in text and "/nowhere/at/all" not in text
    assert value('hiring_news_request_seconds_count{method="GET",route="/orgs/{org_id}/roster"}') == 2
    assert 'hiring_news_request_seconds_bucket{le="0.005",method="GET",route="/orgs/{org_id}/roster"}' in text
    assert value("hiring_news_events_appended_total") == 4
    assert value("hiring_news_append_batch_size_count") == 2
    assert value('hiring_news_append_batch_size_bucket{le="1.0"}') == 1
    assert value('hiring_news_pool_connections_in_use{pool="write"}') >= 0
    assert value('hiring_news_pool_connections{pool="write"}') >= 1


# ---- processes: logs and readiness ---------------------------------------------------------


@contextmanager
def logged_serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """`hiring-news serve` with its log in a file, which `serving` does not capture."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stderr=sink, stdout=sink)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            assert process.poll() is None, log.read_text()
            yield base
        finally:
            stop(process)


def test_keys_never_reach_the_log(fresh_database: str, tmp_path: Path) -> None:
    env = environment(fresh_database)
    env["HIRING_NEWS_LOG_LEVEL"] = "debug"
    created = cli(["keys", "create", "le-monde", "--scope", "write"], env)
    key = created.stdout.strip()
    assert key not in created.stderr
    made_up = "hn_this-key-was-never-issued-" + uuid.uuid4().hex
    log = tmp_path / "serve.log"
    with logged_serve(env, log) as base:
        assert (
            httpx.post(
                f"{base}/events", json=joined("a"), headers={"Authorization": f"Bearer {key}"}
            ).status_code
            == 201
        )
        assert httpx.post(f"{base}/events", json=joined("b"), headers={"X-API-Key": key}).status_code == 201
        assert httpx.get(f"{base}/orgs", headers={"X-API-Key": key}).status_code == 200
        assert (
            httpx.post(f"{base}/events", json=joined("c"), headers={"X-API-Key": made_up}).status_code == 401
        )
        assert httpx.get(f"{base}/orgs", headers={"Authorization": f"Bearer {made_up}"}).status_code == 401
        assert (
            httpx.post(f"{base}/events", json=joined("d"), headers={"X-API-Key": BOOTSTRAP_KEY}).status_code
            == 201
        )
        assert (
            httpx.post(f"{base}/events", content=b'{"broken', headers={"X-API-Key": key, **JSON}).status_code
            == 400
        )
        assert cli(["keys", "revoke", "le-monde"], env).returncode == 0
        assert httpx.get(f"{base}/orgs", headers={"X-API-Key": key}).status_code == 401
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert sum(1 for line in lines if line.get("event") == "request") >= 8, text
    for secret in (key, made_up, BOOTSTRAP_KEY, key[3:], made_up[3:]):
        assert secret not in text


class Proxy:
    """A TCP proxy to PostgreSQL that a test can cut and restore: the database goes away and comes back.

    It runs its own event loop in a thread, so the server process under test and the
    test's own HTTP calls are untouched by it.
    """

    def __init__(
        self, connect: Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
    ) -> None:
        self.port = free_port()
        self._connect = connect
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def _run(self, coroutine: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def up(self) -> None:
        self._run(self._up())

    def down(self) -> None:
        self._run(self._down())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await self._connect()
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


def postgres_connector(
    dsn: str,
) -> Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """How to reach the server of a DSN: TCP, or the Unix socket the embedded server listens on."""
    parts = urlsplit(dsn)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    if socket_dir.startswith("/"):
        [socket] = Path(socket_dir).glob(".s.PGSQL.*[0-9]")
        return lambda: asyncio.open_unix_connection(str(socket))
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    return lambda: asyncio.open_connection(host, port)


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def status_of(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_readyz_is_503_while_the_database_is_away_and_recovers(fresh_database: str) -> None:
    proxy = Proxy(postgres_connector(fresh_database))
    proxy.up()
    name = urlsplit(fresh_database).path.lstrip("/")
    try:
        env = environment(f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}")
        with serving(env) as (base, _):
            assert httpx.post(f"{base}/events", json=joined("a"), headers=ADMIN).status_code == 201
            assert status_of(f"{base}/orgs") == 200

            proxy.down()
            assert wait_for(lambda: status_of(f"{base}/readyz") == 503, 15)
            assert httpx.get(f"{base}/readyz").json()["status"] == "unavailable"
            assert httpx.get(f"{base}/healthz").status_code == 200
            read = httpx.get(f"{base}/orgs", timeout=10)
            assert_problem(read, 503)
            assert read.headers["retry-after"] == "2"
            assert_problem(httpx.post(f"{base}/events", json=joined("b"), headers=ADMIN, timeout=10), 503)

            proxy.up()
            assert wait_for(lambda: status_of(f"{base}/readyz") == 200, 15)
            assert status_of(f"{base}/orgs") == 200
            events = httpx.get(f"{base}/events").json()["events"]
            assert [e["data"]["person_id"] for e in events] == ["a"]
    finally:
        proxy.close()


def test_terminated_backends_are_replaced_without_a_500(fresh_database: str) -> None:
    name = urlsplit(fresh_database).path.lstrip("/")
    with serving(environment(fresh_database)) as (base, _):
        for _ in range(3):
            assert status_of(f"{base}/orgs") == 200

        async def terminate() -> int:
            admin = await asyncpg.connect(with_database(fresh_database, "postgres"))
            try:
                killed = await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                return len(killed)
            finally:
                await admin.close()

        assert asyncio.run(terminate()) >= 1
        statuses = [status_of(f"{base}/orgs") for _ in range(5)]
        assert all(s in (200, 503) for s in statuses), statuses
        assert statuses[-1] == 200
        assert wait_for(lambda: status_of(f"{base}/readyz") == 200, 10)
        assert httpx.post(f"{base}/events", json=joined("z"), headers=ADMIN).status_code == 201
