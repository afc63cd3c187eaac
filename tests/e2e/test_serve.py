"""A real `hiring-news serve` process, driven over HTTP and through the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import ADMIN, BOOTSTRAP_KEY
from tests.e2e.server import cli, environment, serving, stop

SOURCE = {
    "url": "https://www.lemondeinformatique.fr/actualites/a.html",
    "published_at": "2025-07-08",
    "lang": "fr",
}


def joined(person: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "member.joined",
        "source": SOURCE,
        "data": {
            "person_id": person,
            "person_name": person,
            "org_id": "msl",
            "org_name": "MSL",
            "on": "2025-07",
            **extra,
        },
    }
    if key:
        body["idempotency_key"] = key
    return body


def all_events(base: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = httpx.get(f"{base}/events", params={"after": after, "limit": 100}).json()
        found += page["events"]
        if page["next"] is None:
            return found
        after = page["next"]


def test_keys_post_and_read_back(fresh_database: str) -> None:
    env = environment(fresh_database)
    created = cli(["keys", "create", "le-monde-scraper", "--scope", "write"], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("hn_") and "\n" not in key
    assert cli(["keys", "create", "le-monde-scraper"], env).returncode == 1

    with serving(env) as (base, _):
        auth = {"Authorization": f"Bearer {key}"}
        one = httpx.post(f"{base}/events", json=joined("ruoming-pang", key="a1"), headers=auth)
        two = httpx.post(f"{base}/events", json=[joined("nat-friedman")], headers={"X-API-Key": key})
        assert one.status_code == 201 and two.status_code == 201
        events = all_events(base)
        assert [e["data"]["person_id"] for e in events] == ["ruoming-pang", "nat-friedman"]

        # claim.* needs the admin scope.
        denial = {"type": "claim.denied", "data": {"event_id": events[0]["event_id"]}}
        assert httpx.post(f"{base}/events", json=denial, headers=auth).status_code == 403

        listed = cli(["keys", "list"], env)
        assert "le-monde-scraper\twrite" in listed.stdout and key not in listed.stdout
        assert cli(["keys", "revoke", "le-monde-scraper"], env).returncode == 0
        # Revocation counts at once, with no restart.
        assert httpx.post(f"{base}/events", json=joined("x"), headers=auth).status_code == 401
        assert cli(["keys", "revoke", "le-monde-scraper"], env).returncode == 1
        assert len(all_events(base)) == 2


def test_twenty_concurrent_writers_and_gap_free_paging(fresh_database: str) -> None:
    with serving(environment(fresh_database)) as (base, _):

        async def writer(client: httpx.AsyncClient, n: int) -> None:
            for i in range(50):
                answer = await client.post("/events", json=joined(f"w{n}-{i}"), headers=_admin())
                assert answer.status_code == 201, answer.text

        async def run() -> None:
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
                await asyncio.gather(*(writer(client, n) for n in range(20)))

        asyncio.run(run())
        events = all_events(base)
        positions = [e["position"] for e in events]
        assert len(events) == 1000
        assert positions == list(range(1, 1001))
        assert len({e["data"]["person_id"] for e in events}) == 1000


def test_fifty_concurrent_posts_of_one_key_store_one_event(fresh_database: str) -> None:
    with serving(environment(fresh_database)) as (base, _):

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                body = joined("ruoming-pang", key="same-article")
                return await asyncio.gather(
                    *(client.post("/events", json=body, headers=_admin()) for _ in range(50))
                )

        answers = asyncio.run(run())
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * 49 + [201]
        assert len({a.json()["events"][0]["event_id"] for a in answers}) == 1
        assert len(all_events(base)) == 1


def test_a_batch_with_one_invalid_event_stores_none(fresh_database: str) -> None:
    with serving(environment(fresh_database)) as (base, _):
        batch = [joined("a"), joined("b"), joined("c", on="2025-02-30")]
        answer = httpx.post(f"{base}/events", json=batch, headers=_admin())
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["errors"][0]["field"] == "$[2].data.on"
        assert all_events(base) == []


def _postgres_for(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(data_dir) in " ".join(cmdline) and "-D" in cmdline:
            found.append(process)
    return found


def _wait_gone(data_dir: Path, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _postgres_for(data_dir):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_embedded_default_starts_serves_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    data_dir = tmp_path / "data"
    env = environment(None, data_dir)
    with serving(env) as (base, process):
        assert httpx.post(f"{base}/events", json=joined("ruoming-pang"), headers=_admin()).status_code == 201
        assert _postgres_for(data_dir)
        assert stop(process, sig) == 0
    assert _wait_gone(data_dir)
    # The data is kept between runs.
    with serving(env) as (base, _):
        assert len(all_events(base)) == 1
    assert _wait_gone(data_dir)


def test_a_killed_serve_leaves_no_server_behind_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = environment(None, data_dir)
    with serving(env) as (_, process):
        process.send_signal(signal.SIGKILL)
        process.wait()
    # SIGKILL gives no chance to clean up: the server is orphaned...
    assert _postgres_for(data_dir)
    # ...until the next start adopts it, and stops it on the way out.
    with serving(env) as (base, _):
        assert httpx.get(f"{base}/readyz").status_code == 200
    assert _wait_gone(data_dir)


def test_keys_commands_work_on_the_embedded_default(tmp_path: Path) -> None:
    env = environment(None, tmp_path / "data")
    created = cli(["keys", "create", "ci", "--scope", "admin"], env)
    assert created.returncode == 0, created.stderr
    assert "ci\tadmin" in cli(["keys", "list"], env).stdout
    assert _wait_gone(tmp_path / "data")


def test_an_unreachable_database_says_how_to_fix_it() -> None:
    env = environment("postgresql://postgres@127.0.0.1:1/none")
    result = cli(["keys", "list"], env)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def _admin() -> dict[str, str]:
    return ADMIN


def test_logs_are_json_lines_with_the_request_id_and_no_key(fresh_database: str, tmp_path: Path) -> None:
    env = {**environment(fresh_database), "HIRING_NEWS_LOG_LEVEL": "info"}
    log = tmp_path / "serve.log"
    with serving(env, log=log) as (base, _):
        headers = {**ADMIN, "X-Request-ID": "req-append-1"}
        assert httpx.post(f"{base}/events", json=joined("ruoming-pang"), headers=headers).status_code == 201
        bad = httpx.post(
            f"{base}/events", json=joined("x", on="2025-13"), headers={**ADMIN, "X-Request-ID": "req-bad"}
        )
        assert bad.status_code == 422
        assert bad.headers["x-request-id"] == "req-bad"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    appended = [line for line in lines if line.get("request_id") == "req-append-1"]
    assert {line["event"] for line in appended} == {"appended", "request"}
    assert all(line["path"] == "/events" and line["method"] == "POST" for line in appended)
    assert [line["status"] for line in lines if line.get("request_id") == "req-bad"] == [422]
    assert BOOTSTRAP_KEY not in log.read_text()


def test_import_projects_alone_then_serve_carries_on_from_the_checkpoint(
    fresh_database: str, tmp_path: Path
) -> None:
    env = {**environment(fresh_database), "HIRING_NEWS_LOG_LEVEL": "info"}
    # No projector runs: import wins the election and projects its events itself.
    imported = cli(["import", "--example", "article"], env)
    assert imported.returncode == 0, imported.stderr
    log = tmp_path / "serve.log"
    with serving(env, log=log) as (base, _):
        ready = httpx.get(f"{base}/readyz").json()
        assert (ready["head"], ready["projected"], ready["lag"]) == (28, 28, 0)
        answer = httpx.post(f"{base}/events", json=joined("new-hire"), headers=ADMIN)
        assert answer.status_code == 201 and answer.json()["events"][0]["position"] == 29
        # Read-your-writes: the roster waits for the projector to reach position 29.
        roster = httpx.get(f"{base}/orgs/msl/roster", params={"on": "2025-08-10"})
        assert roster.json()["as_of"] == 29 and roster.headers["etag"] == 'W/"29"'
        assert [m["person_id"] for m in roster.json()["members"]] == ["new-hire"]
        article = httpx.get(f"{base}/orgs/meta-superintelligence-labs/roster", params={"on": "2025-07-20"})
        assert "ruoming-pang" in {m["person_id"] for m in article.json()["members"]}
        assert httpx.get(f"{base}/readyz").json()["projector"] == "active"
    events = [line.get("event") for line in _log_lines(log)]
    assert "projector active" in events


def _log_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip().startswith("{")]
