"""service.client's rules without a server: keys, batches, retries, errors (httpx's mock transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
import msgspec
import pytest

from service import client as hn
from service import events as ev
from service.importing import decode_line

URL = "http://hiring-news.test"


def joined(person: str = "ada", **data: Any) -> dict[str, Any]:
    return {
        "type": "member.joined",
        "source": {"url": "https://example.org/a", "published_at": "2025-07-08"},
        "data": {
            "person_id": person,
            "person_name": "Ada",
            "org_id": "o",
            "org_name": "O",
            "on": "2025-07",
            **data,
        },
    }


def accepted(request: httpx.Request, position: int = 1) -> httpx.Response:
    events = json.loads(request.content)
    return httpx.Response(
        201,
        json={
            "events": [
                {
                    "event_id": "00000000-0000-4000-8000-000000000001",
                    "position": position + i,
                    "recorded_at": "2025-07-08T10:00:00Z",
                    "idempotency_key": e["idempotency_key"],
                    "replayed": False,
                }
                for i, e in enumerate(events)
            ]
        },
    )


def problem(status: int, **extra: Any) -> httpx.Response:
    body = {"type": f"https://hiring-news.dev/problems/{status}", "title": "T", "status": status, **extra}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def client(
    answers: list[Callable[[httpx.Request], httpx.Response]], waits: list[float], **options: Any
) -> tuple[hn.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answers[min(len(sent), len(answers)) - 1](request)

    made = hn.Client(URL, "k", transport=httpx.MockTransport(handle), sleep=waits.append, **options)
    return made, sent


# ---- keys ----------------------------------------------------------------------------------


def test_a_posted_event_gets_the_key_import_gives_the_same_line() -> None:
    line = resources.files("service.examples").joinpath("article.jsonl").read_bytes().splitlines()[0]
    unkeyed = {k: v for k, v in json.loads(line).items() if k != "idempotency_key"}
    imported = decode_line(1, json.dumps(unkeyed).encode())
    assert imported is not None
    assert hn.typed(unkeyed).idempotency_key == imported.idempotency_key
    # However the JSON is written: key order, defaults spelt out.
    reordered = dict(reversed(list(unkeyed.items())))
    assert hn.typed({**reordered, "status": "reported"}).idempotency_key == imported.idempotency_key
    # A key of its own is kept.
    assert hn.typed({**unkeyed, "idempotency_key": "mine"}).idempotency_key == "mine"


def test_an_invalid_event_is_refused_before_anything_is_sent() -> None:
    news, sent = client([accepted], [])
    with pytest.raises(hn.ProblemError) as raised:
        news.post([joined(), joined(on="2025-02-30")])
    assert sent == []
    assert raised.value.status == 422
    [error] = raised.value.errors
    assert (error.field, error.pointer) == ("$[1].data.on", "/1/data/on")
    assert error.reason == "'2025-02-30' is not a real day (2025-02 has 28 days)"


# ---- batches -----------------------------------------------------------------------------------


def test_batches_are_split_at_the_servers_limits() -> None:
    events = [hn.typed(joined(f"p{i}")) for i in range(2500)]
    assert [len(b) for b in hn.batches(events)] == [1000, 1000, 500]
    quoted = [
        hn.typed({**joined(f"q{i}"), "source": {"url": "https://e.org", "quote": "x" * 2000}})
        for i in range(1000)
    ]
    by_bytes = list(hn.batches(quoted))
    assert len(by_bytes) == 3 and sum(map(len, by_bytes)) == 1000
    assert all(len(msgspec.json.encode(b)) <= ev.MAX_BODY_BYTES for b in by_bytes)
    # The same key twice never shares a batch (the server refuses that), in order.
    twice = [hn.typed(joined("a")), hn.typed(joined("b")), hn.typed(joined("a"))]
    assert [[e.data.person_id for e in b] for b in hn.batches(twice)] == [["a", "b"], ["a"]]  # type: ignore[union-attr]


def test_post_sends_each_batch_and_answers_one_accepted_per_event() -> None:
    news, sent = client([accepted], [], max_events=2)
    answers = news.post([joined("a"), joined("b"), joined("c")])
    assert len(sent) == 2 and [len(json.loads(r.content)) for r in sent] == [2, 1]
    assert [a.idempotency_key for a in answers] == [hn.typed(joined(p)).idempotency_key for p in "abc"]
    assert sent[0].headers["authorization"] == "Bearer k"


# ---- retries -------------------------------------------------------------------------------------


def test_5xx_and_dropped_connections_are_retried_with_growing_jittered_waits() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("server disconnected", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    waits: list[float] = []
    news, sent = client(
        [lambda r: problem(503), dropped, refused, lambda r: httpx.Response(502), accepted],
        waits,
        retry=hn.Retry(base=1.0, cap=100.0),
    )
    [answer] = news.post(joined())
    assert answer.position == 1 and len(sent) == 5
    # Full jitter: the n-th wait is drawn from [0, base * 2**n].
    assert len(waits) == 4 and all(0 <= w <= 2**n for n, w in enumerate(waits))
    # The same body each time: the same key, so a retry that reached the server is a replay.
    assert len({r.content for r in sent}) == 1


def test_a_429_waits_at_least_its_retry_after() -> None:
    waits: list[float] = []
    news, sent = client([lambda r: httpx.Response(429, headers={"Retry-After": "7"}), accepted], waits)
    news.post(joined())
    assert len(sent) == 2 and waits[0] >= 7


def test_a_4xx_is_raised_at_once_with_its_field_errors() -> None:
    error = {"field": "$.data.person_id", "pointer": "/data/person_id", "reason": "unknown person id 'x'"}
    news, sent = client(
        [lambda r: problem(422, detail="unknown person id 'x'", errors=[error]), accepted], []
    )
    with pytest.raises(hn.ProblemError) as raised:
        news.post(joined())
    assert len(sent) == 1
    assert raised.value.status == 422 and raised.value.detail == "unknown person id 'x'"
    assert [(e.field, e.pointer, e.reason) for e in raised.value.errors] == [tuple(error.values())]


def test_retries_are_bounded_in_attempts_and_in_time() -> None:
    news, sent = client([lambda r: problem(503)], [], retry=hn.Retry(attempts=4))
    with pytest.raises(hn.Unavailable, match="gave up after 4 attempts"):
        news.roster("o")
    assert len(sent) == 4
    # A Retry-After longer than the time left is not waited for.
    slow, sent = client([lambda r: httpx.Response(503, headers={"Retry-After": "600"})], [])
    with pytest.raises(hn.Unavailable):
        slow.roster("o")
    assert len(sent) == 1


async def test_the_async_form_follows_the_same_rules() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return problem(503) if len(sent) == 1 else accepted(request)

    async with hn.AsyncClient(
        URL, "k", transport=httpx.MockTransport(handle), retry=hn.Retry(base=0.001)
    ) as news:
        [answer] = await news.post(joined())
    assert answer.replayed is False and len(sent) == 2
