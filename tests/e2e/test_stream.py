"""GET /events/stream against a real `hiring-news serve`, read by a real SSE client (httpx-sse).

Writers post concurrently while the client reads, and the client is made to reconnect
half-way with its Last-Event-ID: every event arrives once, in position order. Also: the
type filter, heartbeats, where a stream starts, the 503 beyond the most streams, a slow
client dropped, and streams ending when the server stops.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import ADMIN
from tests.e2e.server import cli, environment, serving, stop

WRITERS = 4
BATCHES = 15  # per writer
STREAM_TIMEOUT = httpx.Timeout(10.0, read=15.0)


def person(tag: str) -> dict[str, Any]:
    return {"type": "person.added", "data": {"person_id": tag, "name": tag.replace("-", " ")}}


def write(base: str, writer: int, errors: list[str]) -> None:
    with httpx.Client(base_url=base, headers=ADMIN, timeout=30) as client:
        for batch in range(BATCHES):
            events = [person(f"w{writer}-b{batch}-e{i}") for i in range(1 + (writer + batch) % 3)]
            answer = client.post("/events", json=events)
            if answer.status_code != 201:
                errors.append(answer.text)


def read(client: httpx.Client, last_event_id: int, most: int, last: int) -> list[dict[str, Any]]:
    """Events after `last_event_id` from a new stream, until `most` of them or position
    `last`; then the connection is dropped."""
    got: list[dict[str, Any]] = []
    headers = {"Last-Event-ID": str(last_event_id)}
    with connect_sse(client, "GET", "/events/stream", params={"after": 0}, headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for message in source.iter_sse():
            event = message.json()
            assert message.id == str(event["position"]) and message.event == event["type"]
            got.append(event)
            if len(got) >= most or event["position"] >= last:
                break
    return got


@pytest.fixture
def served(fresh_database: str) -> Iterator[str]:
    env = environment(fresh_database)
    imported = cli(["import", "--example", "article"], env)
    assert imported.returncode == 0, imported.stderr
    with serving(env) as (base, _):
        yield base


def test_every_event_arrives_once_and_in_order_across_a_reconnect(served: str) -> None:
    total = 28 + sum(1 + (w + b) % 3 for w in range(WRITERS) for b in range(BATCHES))
    errors: list[str] = []
    writers = [threading.Thread(target=write, args=(served, w, errors)) for w in range(WRITERS)]
    for thread in writers:
        thread.start()
    got: list[dict[str, Any]] = []
    reconnects = 0
    try:
        with httpx.Client(base_url=served, timeout=STREAM_TIMEOUT) as client:
            # Catch up from the start and on into what the writers post meanwhile, dropping
            # the connection every 40 events and reconnecting from the last id received.
            deadline = time.monotonic() + 90
            while not got or got[-1]["position"] < total:
                assert time.monotonic() < deadline, f"{len(got)} of {total} events received"
                got += read(client, got[-1]["position"] if got else 0, 40, total)
                reconnects += 1
    finally:
        for thread in writers:
            thread.join()
    assert errors == []
    assert head(served) == total
    assert [e["position"] for e in got] == list(range(1, total + 1))
    assert reconnects >= 3
    # Each is the stored event, exactly as GET /events gives it.
    page = httpx.get(f"{served}/events", params={"after": 0, "limit": 1000}).json()["events"]
    assert got == page


def head(base: str) -> int:
    return int(httpx.get(f"{base}/readyz").json()["head"])


def test_the_type_filter_and_where_a_stream_starts(served: str) -> None:
    with httpx.Client(base_url=served, timeout=STREAM_TIMEOUT) as client:
        with connect_sse(
            client, "GET", "/events/stream", params={"after": 0, "type": "lead.appointed,org.renamed"}
        ) as source:
            leads = []
            for message in source.iter_sse():
                leads.append((message.event, message.json()["data"]["person_id"]))
                if len(leads) == 2:
                    break
        assert leads == [("lead.appointed", "alexandr-wang"), ("lead.appointed", "zhifeng-chen")]

        # Without after or Last-Event-ID: only what is appended from now on.
        with connect_sse(client, "GET", "/events/stream", params={"type": "person.added"}) as source:
            posted = httpx.post(f"{served}/events", headers=ADMIN, json=person("late-comer"))
            assert posted.status_code == 201
            message = next(iter(source.iter_sse()))
            assert message.json()["data"]["person_id"] == "late-comer"
            assert int(message.id) == posted.json()["events"][0]["position"]

        # Last-Event-ID wins over after: the browser resends the first URL when it reconnects.
        with connect_sse(
            client, "GET", "/events/stream", params={"after": 0}, headers={"Last-Event-ID": "27"}
        ) as source:
            assert next(iter(source.iter_sse())).id == "28"

    for params, headers in (
        ({"type": "member.hired"}, {}),
        ({"after": "-1"}, {}),
        ({}, {"Last-Event-ID": "soon"}),
    ):
        answer = httpx.get(f"{served}/events/stream", params=params, headers=headers)
        assert answer.status_code == 400, (params, headers)
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_heartbeats_beyond_the_most_streams_and_shutting_down(fresh_database: str) -> None:
    env = environment(fresh_database)
    env |= {"HIRING_NEWS_MAX_STREAMS": "2", "HIRING_NEWS_STREAM_HEARTBEAT": "0.3"}
    with serving(env) as (base, process), httpx.Client(base_url=base, timeout=STREAM_TIMEOUT) as client:
        with (
            client.stream("GET", "/events/stream") as first,
            client.stream("GET", "/events/stream") as second,
        ):
            assert first.status_code == second.status_code == 200
            lines = first.iter_lines()
            assert next(lines) == ": hiring-news live feed"
            assert ": heartbeat" in [next(lines) for _ in range(4)]

            refused = httpx.get(f"{base}/events/stream")
            assert refused.status_code == 503
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert int(refused.headers["retry-after"]) > 0

        # Both closed: their slots are free again.
        deadline = time.monotonic() + 10
        while True:
            with client.stream("GET", "/events/stream") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed streams' slots never came back"
            time.sleep(0.2)

        # A stream open does not hold the server up when it stops: the stream ends.
        with client.stream("GET", "/events/stream") as open_:
            assert open_.status_code == 200
            started = time.monotonic()
            stop(process)
            assert time.monotonic() - started < 15
            # The stream ended cleanly: the rest of it reads to its end.
            assert ": hiring-news live feed" in list(open_.iter_lines())


def test_a_slow_client_is_dropped(fresh_database: str, tmp_path: Path) -> None:
    env = environment(fresh_database)
    env |= {
        "HIRING_NEWS_MAX_STREAMS": "1",
        "HIRING_NEWS_STREAM_WRITE_TIMEOUT": "1",
        "HIRING_NEWS_LOG_LEVEL": "warning",
    }
    log = tmp_path / "serve.log"
    with serving(env, log=log) as (base, _):
        # Far more than a stalled client's socket and the server's buffers hold.
        with httpx.Client(base_url=base, headers=ADMIN, timeout=60) as client:
            for batch in range(8):
                events = [person(f"bulk-{batch}-{i}-{'x' * 200}"[:100]) for i in range(1000)]
                assert client.post("/events", json=events).status_code == 201
        host, port = base.removeprefix("http://").split(":")
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((host, int(port)))
        try:
            stalled.sendall(f"GET /events/stream?after=0 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            # It reads nothing more. Meanwhile it holds the only slot...
            time.sleep(0.5)
            assert httpx.get(f"{base}/events/stream").status_code == 503
            # ...until the server gives up on it.
            deadline = time.monotonic() + 30
            while True:
                with (
                    httpx.Client(base_url=base, timeout=STREAM_TIMEOUT) as client,
                    client.stream("GET", "/events/stream") as answer,
                ):
                    if answer.status_code == 200:
                        break
                assert time.monotonic() < deadline, "the slow client was never dropped"
                time.sleep(0.5)
        finally:
            stalled.close()
    assert "live stream dropped: the client is too slow" in log.read_text()
